"""session.json as a typed object: what a session remembers besides its records."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace


@dataclass(frozen=True)
class SessionMeta:
    name: str
    """The session's folder name."""
    created: float = 0.0
    """Unix time the session was created."""
    updated: float = 0.0
    """Unix time of the last change to this file."""
    round: int = 0
    """How many training runs produced the current policy (rankings record the round they were made in)."""
    policy_version: str = "base"
    """The policy adapter in use: 'base' (no training yet) or a saved version vNNN."""
    model: dict = field(default_factory=dict)
    """The ModelConfig the session was created with (asdict)."""
    reward_model: dict | None = None
    """Summary of the saved reward model: trained_at, held-out accuracy, pair counts."""
    ppo_steps: int = 0
    """PPO steps taken in this session (continues the step axis across runs)."""
    kl_coef: float | None = None
    """The adaptive KL coefficient at the end of the last PPO run, to continue from."""
    extra: dict = field(default_factory=dict)
    """Keys this version does not know (written by a newer version): kept as they were."""

    @classmethod
    def from_dict(cls, data: dict) -> "SessionMeta":
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict:
        out = asdict(self)
        extra = out.pop("extra")
        return {**extra, **out}

    def with_changes(self, **changes) -> "SessionMeta":
        return replace(self, **changes)
