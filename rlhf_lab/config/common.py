"""Shared pieces of the frozen configs: range checks and reading configs back from session.json."""
from __future__ import annotations

from dataclasses import fields

from ..errors import ConfigError

MAX_K = 16
MAX_NEW_TOKENS_LIMIT = 1024


def check_range(name: str, value, low, high, why: str = "") -> None:
    """Raise ConfigError unless low <= value <= high."""
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}{why}")


def from_dict(cls, data: dict | None):
    """Build a config from a (possibly older) dict, ignoring keys this version does not know."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in (data or {}).items() if k in known})


def check_answer_training(cfg) -> None:
    """The checks DPOConfig and SFTConfig share: epochs, learning rate, held-out share, token limits."""
    check_range("epochs", cfg.epochs, 1, 100)
    if not 0 < cfg.learning_rate < 1:
        raise ConfigError(f"learning rate must be in (0, 1), not {cfg.learning_rate}")
    if not 0 < cfg.eval_fraction < 1:
        raise ConfigError(f"eval_fraction must be in (0, 1), not {cfg.eval_fraction}")
    check_range("max_prompt_length", cfg.max_prompt_length, 8, MAX_NEW_TOKENS_LIMIT)
    check_range("max_completion_length", cfg.max_completion_length, 1, MAX_NEW_TOKENS_LIMIT)
