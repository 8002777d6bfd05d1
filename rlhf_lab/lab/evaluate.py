"""Evaluate the current policy against the reference with a judge, on fresh samples."""
from __future__ import annotations

import time

from .. import judges
from ..arena.evaluate import evaluate_policy
from ..config import PPOConfig
from ..data import jsonl
from ..data import prompts as builtin
from ..runtime import model_thread

EVALUATIONS = "evaluations.jsonl"  # every result, with its example answers: the report's before/after


def evaluate(lab, judge: str, n_prompts: int = 16, cfg: PPOConfig | None = None, seed: int = 1234,
             prompts: list[str] | None = None) -> dict:
    """The judge's mean score of fresh samples from the policy and from the reference (same prompts,
    same seeds), and the policy samples' mean sequence KL to the reference. Prompts: the built-in set, or
    n of `prompts` (a scenario's). The result is also appended to the session's evaluations.jsonl."""
    fn = judges.get_judge(judge)
    cfg = cfg or PPOConfig()
    session = lab.require_session()
    chosen = builtin.sample_prompts(int(n_prompts), seed=seed) if not prompts else prompts[:int(n_prompts)]
    with lab.jobs.inline("evaluate"):
        result = model_thread.call(evaluate_policy, lab.models, fn, chosen, cfg, seed)
    meta = session.read_meta()
    result = {"judge": judge, "policy": meta.policy_version, **result}
    jsonl.append(session.root / EVALUATIONS, [{"time": time.time(), "round": meta.round, **result}])
    return result
