"""Lab: the headless facade. The UI, the CLI and notebooks call these methods and nothing else.

The Lab holds the state every workflow shares (the loaded models, the open session, the job runner); each
method hands the work to the module of its workflow: sessions, annotate, reward, ppo, evaluate, arena,
demonstrate, sft, dpo, lineage, export, scenario, report, share.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

from ..config import DPOConfig, GenerationConfig, ModelConfig, PPOConfig, RewardConfig, SFTConfig
from ..data.meta import SessionMeta
from ..data.demonstrations import all_pairs
from ..data.pairs import Pair
from ..data.session import Session
from ..errors import LabBusy, LabError
from ..modeling import checkpoints
from ..modeling.adapters import LabModels
from ..runtime.jobs import JobRunner
from . import (annotate, arena, demonstrate, dpo, evaluate, lineage, ppo, report, reward, scenario, sessions,
               sft, share)
from . import export as exporting

DEFAULT_SESSIONS = Path(__file__).resolve().parent.parent.parent / "sessions"


class Lab:
    def __init__(self, sessions_dir: Path | str = DEFAULT_SESSIONS, model_cfg: ModelConfig | None = None):
        self.sessions_dir = Path(sessions_dir)
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        self.default_model_cfg = model_cfg or ModelConfig()
        self.models: LabModels | None = None
        self.model_cfg: ModelConfig | None = None
        self.session: Session | None = None
        self.jobs = JobRunner()
        self.warnings: list[str] = []
        self.score_cache: dict[tuple, float] = {}
        self.pending: dict | None = None  # generated cards not ranked yet: a reloaded page shows them again
        self.decode_note = ""  # which sampling path the loaded model uses, said at start-up
        self.arena_matches: dict[str, dict] = {}  # drawn, not voted on: id -> match with its hidden versions
        self._model_lock = threading.Lock()

    # ---- state every workflow shares -------------------------------------------------------------------
    def require_session(self) -> Session:
        if self.session is None:
            raise LabError("No session is open: create or open one first.")
        return self.session

    def require_idle(self) -> None:
        msg = self.jobs.busy_message()
        if msg:
            raise LabBusy(msg)

    def meta(self) -> SessionMeta:
        return self.require_session().read_meta()

    @property
    def has_reward_model(self) -> bool:
        return self.session is not None and checkpoints.is_complete(self.session.adapter_dir("reward"))

    # ---- models and sessions ----------------------------------------------------------------------------
    def load_model(self, cfg: ModelConfig | None = None) -> LabModels:
        return sessions.load_model(self, cfg)

    def list_sessions(self) -> list[str]:
        return Session.list(self.sessions_dir)

    def create_session(self, name: str, model_cfg: ModelConfig | None = None) -> Session:
        return sessions.create_session(self, name, model_cfg)

    def open_session(self, name: str, create: bool = False, with_model: bool = True) -> Session:
        return sessions.open_session(self, name, create, with_model)

    # ---- annotation ----------------------------------------------------------------------------------------
    def generate(self, prompt: str, cfg: GenerationConfig | None = None) -> dict:
        """K completions of one prompt from the current policy: generate_stream's final event."""
        final = None
        for event in annotate.generate_stream(self, prompt, cfg):
            final = event
        return final

    def generate_stream(self, prompt: str, cfg: GenerationConfig | None = None) -> Iterator[dict]:
        return annotate.generate_stream(self, prompt, cfg)

    def rank(self, prompt: str, completions: list[str], ranking=None, verdict: str = "ranked",
             annotator: str = "human", policy: str | None = None, extra: dict | None = None) -> dict:
        return annotate.rank(self, prompt, completions, ranking, verdict, annotator, policy, extra)

    def undo(self) -> dict:
        return annotate.undo(self)

    def pending_cards(self) -> dict | None:
        """The open session's last generated cards that are not ranked yet (generate_stream's final event)."""
        return annotate.pending(self)

    def rankings(self) -> list[dict]:
        active, self.warnings = self.require_session().rankings()
        return active

    def judge(self) -> str | None:
        """The judge that ranked most of the session on autopilot, or None when people ranked it."""
        return ppo.session_judge(self)[0]

    def pairs(self) -> list[Pair]:
        """The pairs of the rankings and of the demonstrations (each preferred over the answers its card
        showed): what the reward model and DPO learn from, and what `export` writes."""
        return all_pairs(self.rankings(), self.demonstrations())

    def counts(self) -> dict:
        return annotate.counts(self)

    def export(self, path: Path | str, fmt: str = "trl") -> int:
        """One preference file: "trl" (conversational), "trl-plain" (plain strings) or "hh-rlhf"; returns rows."""
        return exporting.export_file(self, path, fmt)

    def export_bundle(self, out: Path | str, dtype: str = "fp32") -> dict:
        """The hand-off bundle (data, adapters, merged models, LAUNCH.md) in a new folder `out`."""
        return exporting.export_bundle(self, out, dtype)

    def import_pairs(self, path: Path | str, annotator: str = "import") -> int:
        return annotate.import_pairs(self, path, annotator)

    def simulate(self, judge: str, n_prompts: int, cfg: GenerationConfig | None = None, seed: int = 0,
                 prompts: list[str] | None = None, inline: bool = True):
        """Autopilot: the judge ranks K answers for each of n prompts (inline rows, or a background Job)."""
        return annotate.simulate(self, judge, n_prompts, cfg, seed, prompts, inline)

    # ---- reward model ---------------------------------------------------------------------------------------
    def train_reward(self, cfg: RewardConfig | None = None, inline: bool = True):
        return reward.train_reward(self, cfg, inline)

    def score(self, prompt: str, completions: list[str], truncated: list[bool] | None = None) -> list[float]:
        return reward.score(self, prompt, completions, truncated)

    def agreement(self, record: dict) -> tuple[int, int] | None:
        return reward.agreement(self, record)

    # ---- PPO and evaluation ------------------------------------------------------------------------------------
    def ppo(self, steps: int, cfg: PPOConfig | None = None, inline: bool = True):
        return ppo.ppo(self, steps, cfg, inline)

    def policy_versions(self) -> list[str]:
        return ppo.policy_versions(self)

    def evaluate(self, judge: str, n_prompts: int = 16, cfg: PPOConfig | None = None, seed: int = 1234,
                 prompts: list[str] | None = None, policy: str | None = None,
                 pool: list[str] | None = None) -> dict:
        return evaluate.evaluate(self, judge, n_prompts, cfg, seed, prompts, policy, pool)

    # ---- workshop: scenarios ------------------------------------------------------------------------------
    def use_scenario(self, name: str):
        """The named scenario (scenarios.py), recorded on the open session."""
        return scenario.use_scenario(self, name)

    def run_scenario(self, name: str, seed: int = 0) -> Iterator[dict]:
        """A scenario's whole loop: autopilot -> reward model -> DPO (or PPO) -> evaluate; rows, then a summary."""
        return scenario.run_scenario(self, name, seed)

    def story(self) -> list[str]:
        """This session's numbers as short plain-language lines (the story panel)."""
        return report.story(self)

    def report(self, out: Path | str, samples: int = 0) -> dict:
        """Write the self-contained HTML run report; samples > 0 first samples fresh before/after answers."""
        return report.write_report(self, out, samples)

    def pack(self, out: Path | str) -> dict:
        """Zip the open session (records, metrics, adapters, a manifest of sha256 sums)."""
        return share.pack(self, out)

    def unpack(self, source: Path | str, name: str | None = None) -> dict:
        """A packed session as a new session here (checked; never over an existing one)."""
        return share.unpack(self, source, name)

    # ---- arena: blind A/B votes between policy versions and the leaderboard -------------------------------------
    def draw_match(self, versions: list[str] | None = None, prompt: str | None = None,
                   cfg: GenerationConfig | None = None, seed: int | None = None) -> dict:
        return arena.draw(self, versions, prompt, cfg, seed)

    def open_match(self) -> dict | None:
        return arena.open_match(self)

    def vote(self, match_id: str, verdict: str, annotator: str = "human") -> dict:
        return arena.vote(self, match_id, verdict, annotator)

    def undo_vote(self, annotator: str | None = None) -> dict:
        return arena.undo(self, annotator)

    def votes(self, annotator: str | None = None) -> list[dict]:
        return arena.votes(self, annotator)[0]

    def voters(self) -> list[str]:
        return arena.annotators(self)

    def leaderboard(self, annotator: str | None = None, rounds: int | None = None, seed: int = 0) -> dict:
        return arena.leaderboard(self, annotator, rounds, seed)

    def run_arena(self, judge: str, versions: list[str] | None = None, n_prompts: int = 16,
                  cfg: GenerationConfig | None = None, seed: int = 0, inline: bool = True):
        return arena.autopilot(self, judge, versions, n_prompts, cfg, seed, inline)

    def answer_scores(self, ids: set[str] | None = None) -> dict[str, list[float]]:
        return arena.scores_of_answers(self, ids)

    # ---- demonstrations, SFT, DPO and the lineage of policy versions -------------------------------------------
    def demonstrate(self, prompt: str, completion: str, shown: list[str] | None = None,
                    shown_truncated: list[bool] | None = None, ranking_id: str | None = None,
                    annotator: str = "human") -> dict:
        return demonstrate.demonstrate(self, prompt, completion, shown, shown_truncated, ranking_id, annotator)

    def demonstrations(self) -> list[dict]:
        return demonstrate.demonstrations(self)

    def undo_demonstration(self) -> dict:
        return demonstrate.undo_demonstration(self)

    def export_demonstrations(self, path: Path | str) -> int:
        return demonstrate.export_demonstrations(self, path)

    def import_demonstrations(self, path: Path | str, annotator: str = "import") -> int:
        return demonstrate.import_demonstrations(self, path, annotator)

    def write_demonstrations(self, judge: str, n: int, cfg: GenerationConfig | None = None,
                             seed: int = 0) -> Iterator[dict]:
        return demonstrate.write_demonstrations(self, judge, n, cfg, seed)

    def sft(self, cfg: SFTConfig | None = None, inline: bool = True):
        return sft.sft(self, cfg, inline)

    def dpo(self, cfg: DPOConfig | None = None, inline: bool = True):
        return dpo.dpo(self, cfg, inline)

    def versions(self) -> list[dict]:
        return lineage.versions(self)

    # ---- control ------------------------------------------------------------------------------------------------
    def stop(self) -> bool:
        """Ask the running job to stop at its next check (at least once per minibatch / token)."""
        return self.jobs.stop()

    def status(self) -> dict:
        job = self.jobs.current or self.jobs.last
        return {"session": self.session.name if self.session else None,
                "model": self.model_cfg.model if self.model_cfg else None,
                "busy": self.jobs.current.name if self.jobs.current else None,
                "job": None if job is None else {"name": job.name, "running": job.running, "error": job.error,
                                                 "last": {k: v for k, v in job.last.items() if k != "samples"}}}
