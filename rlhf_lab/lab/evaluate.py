"""Evaluate the current policy against the reference with a judge, on fresh samples."""
from __future__ import annotations

from .. import judges
from ..arena.evaluate import evaluate_policy
from ..config import PPOConfig
from ..data import prompts as builtin
from ..runtime import model_thread


def evaluate(lab, judge: str, n_prompts: int = 16, cfg: PPOConfig | None = None, seed: int = 1234) -> dict:
    """The judge's mean score of fresh samples from the policy and from the reference (same prompts,
    same seeds), and the policy samples' mean sequence KL to the reference."""
    fn = judges.get_judge(judge)
    cfg = cfg or PPOConfig()
    lab.require_session()
    prompts = builtin.sample_prompts(int(n_prompts), seed=seed)
    with lab.jobs.inline("evaluate"):
        result = model_thread.call(evaluate_policy, lab.models, fn, prompts, cfg, seed)
    return {"judge": judge, "policy": lab.meta().policy_version, **result}
