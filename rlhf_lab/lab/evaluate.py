"""Evaluate the current policy against the reference with a judge, on fresh samples."""
from __future__ import annotations

import time

from .. import judges, scenarios
from ..arena.evaluate import evaluate_policy
from ..config import PPOConfig
from ..data import jsonl
from ..data import prompts as builtin
from ..runtime import model_thread

EVALUATIONS = "evaluations.jsonl"  # every result, with its example answers: the report's before/after


def evaluate(lab, judge: str, n_prompts: int = 16, cfg: PPOConfig | None = None, seed: int = 1234,
             prompts: list[str] | None = None) -> dict:
    """The judge's mean score of fresh samples from the policy and from the reference (same prompts,
    same seeds), and the policy samples' mean sequence KL to the reference. Prompts: n of `prompts`, else of
    the judge's scenario set, those the session never ranked first (a fresh sample of a ranked prompt is still
    a new answer, but an unseen prompt tests more). The result is also appended to evaluations.jsonl."""
    fn = judges.get_judge(judge)
    cfg = cfg or PPOConfig()
    session = lab.require_session()
    if prompts:
        chosen = list(prompts)[:int(n_prompts)]
    else:
        ranked = {r["prompt"] for r in lab.rankings()}
        pool = scenarios.prompts_for_judge(judge)
        shuffled = builtin.sample_prompts(len(pool), seed, pool)
        fresh_first = sorted(shuffled, key=lambda p: p in ranked)  # stable: unranked prompts first
        chosen = (fresh_first * (int(n_prompts) // len(fresh_first) + 1))[:int(n_prompts)]
    with lab.jobs.inline("evaluate"):
        result = model_thread.call(evaluate_policy, lab.models, fn, chosen, cfg, seed)
    meta = session.read_meta()
    result = {"judge": judge, "policy": meta.policy_version, **result}
    jsonl.append(session.root / EVALUATIONS, [{"time": time.time(), "round": meta.round, **result}])
    return result
