"""Evaluate a policy version against the reference with a judge, on fresh samples."""
from __future__ import annotations

from .. import judges
from ..arena.evaluate import evaluate_policy
from ..config import PPOConfig
from ..data import prompts as builtin
from ..runtime import model_thread
from .lineage import policy_as, resolve


def evaluate(lab, judge: str, n_prompts: int = 16, cfg: PPOConfig | None = None, seed: int = 1234,
             policy: str | None = None) -> dict:
    """The judge's mean score of fresh samples from a policy version (default: the newest) and from the
    reference (same prompts, same seeds), and the policy samples' mean sequence KL to the reference. A
    version other than the current one is loaded for the evaluation only; the current one comes back after."""
    fn = judges.get_judge(judge)
    cfg = cfg or PPOConfig()
    lab.require_session()
    version = resolve(lab, policy)
    prompts = builtin.sample_prompts(int(n_prompts), seed=seed)

    def run():
        with policy_as(lab, version):
            return evaluate_policy(lab.models, fn, prompts, cfg, seed)

    with lab.jobs.inline("evaluate"):
        result = model_thread.call(run)
    return {"judge": judge, "policy": version, **result}
