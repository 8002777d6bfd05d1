"""Evaluate a policy version against the reference with a judge, on fresh samples."""
from __future__ import annotations

import time

from .. import judges, scenarios
from ..arena.evaluate import evaluate_policy
from ..config import PPOConfig
from ..data import jsonl
from ..data import prompts as builtin
from ..runtime import model_thread
from .lineage import policy_as, resolve

EVALUATIONS = "evaluations.jsonl"  # every result, with its example answers: the report's before/after


def evaluate(lab, judge: str, n_prompts: int = 16, cfg: PPOConfig | None = None, seed: int = 1234,
             prompts: list[str] | None = None, policy: str | None = None, pool: list[str] | None = None) -> dict:
    """The judge's mean score of fresh samples from a policy version (default: the newest) and from the
    reference (same prompts, same seeds), and the policy samples' mean sequence KL to the reference. A version
    other than the current one is loaded for the evaluation only; the current one comes back after.
    Prompts: n of `prompts`, else of `pool` (default: the judge's scenario set), those the session never
    ranked first (a fresh sample of a ranked prompt is still a new answer, but an unseen prompt tests more).
    The result is also appended to evaluations.jsonl."""
    fn = judges.get_judge(judge)
    cfg = cfg or PPOConfig()
    session = lab.require_session()
    version = resolve(lab, policy)
    if prompts:
        chosen = list(prompts)[:int(n_prompts)]
    else:
        ranked = {r["prompt"] for r in lab.rankings()}
        pool = list(pool or scenarios.prompts_for_judge(judge))
        shuffled = builtin.sample_prompts(len(pool), seed, pool)
        fresh_first = sorted(shuffled, key=lambda p: p in ranked)  # stable: unranked prompts first
        chosen = (fresh_first * (int(n_prompts) // len(fresh_first) + 1))[:int(n_prompts)]

    def run():
        with policy_as(lab, version):
            return evaluate_policy(lab.models, fn, chosen, cfg, seed)

    with lab.jobs.inline("evaluate"):
        result = model_thread.call(run)
    result = {"judge": judge, "policy": version, **result}
    meta = session.read_meta()
    jsonl.append(session.root / EVALUATIONS, [{"time": time.time(), "round": meta.round, **result}])
    return result
