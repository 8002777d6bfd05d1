"""The story panel's lines and the run report, from the open session's records."""
from __future__ import annotations

import os
from pathlib import Path

from .. import report, story as story_lines
from ..arena.evaluate import evaluate_policy
from ..config import PPOConfig
from ..data import jsonl
from ..data import prompts as builtin
from ..errors import StorageError
from ..metrics import to_frame
from ..runtime import model_thread
from .evaluate import EVALUATIONS
from .lineage import read_info
from .ppo import session_judge

def last_evaluation(session) -> dict | None:
    rows, _ = jsonl.read(session.root / EVALUATIONS)
    return rows[-1] if rows else None


def leaderboard(lab, session) -> list[dict] | None:
    """The arena's Bradley-Terry leaderboard over all of the session's votes; None without votes."""
    from .arena import leaderboard as arena_leaderboard

    result = arena_leaderboard(lab)
    if not result.get("votes"):
        return None
    keep = ("version", "rank", "rating", "ci_low", "ci_high", "lc_rating", "wins", "losses", "ties")
    return [{k: row[k] for k in keep if k in row} for row in result["leaderboard"]]


def ppo_stop(session, meta) -> dict | None:
    """Why the PPO run that made the current policy stopped early, where it said (the KL limit): its round and
    message, from the version's info. A run whose only update was undone saved no version and is not told."""
    info = read_info(session, meta.policy_version) if meta.policy_version != "base" else {}
    if info.get("algorithm") != "ppo":
        return None
    summary = info.get("summary")
    message = summary.get("message") if isinstance(summary, dict) else None
    return {"round": info.get("round"), "message": message} if isinstance(message, str) else None


def numbers(lab) -> dict:
    """What the story and the report read: session.json, counts, metric rows, the latest evaluation, why the
    current policy's PPO run stopped early."""
    session = lab.require_session()
    rows, _ = session.metrics()
    judge, _ = session_judge(lab)
    meta = session.read_meta()
    return {"meta": meta.to_dict(), "counts": lab.counts(), "metrics": rows, "judge": judge,
            "evaluation": last_evaluation(session), "ppo_stop": ppo_stop(session, meta)}


def story(lab) -> list[str]:
    """The story panel's lines for the open session (empty without one)."""
    if lab.session is None:
        return []
    data = numbers(lab)
    return story_lines.story(data["counts"], data["meta"].get("reward_model"),
                             to_frame(data["metrics"], "ppo").to_dict("records"), data["evaluation"],
                             data["judge"], to_frame(data["metrics"], "dpo").to_dict("records"), data["ppo_stop"])


def sample_before_after(lab, n_prompts: int, seed: int = 1234) -> dict:
    """Fresh answers of the policy and of the original model for the same prompts: `evaluate` with the
    session's judge (stored like any evaluation), or unscored where people ranked."""
    judge, _ = session_judge(lab)
    if judge:
        return lab.evaluate(judge, n_prompts, seed=seed)
    if lab.models is None:
        lab.load_model()
    prompts = builtin.sample_prompts(int(n_prompts), seed=seed)
    with lab.jobs.inline("report samples"):
        result = model_thread.call(evaluate_policy, lab.models, lambda p, c: 0.0, prompts, PPOConfig(), seed)
    return {**result, "judge": None, "policy": lab.meta().policy_version, "policy_score": None,
            "reference_score": None, "score_gain": None, "score_gain_ci": [None, None]}


def write_report(lab, out: Path | str, samples: int = 0) -> dict:
    """Write the report to `out` (whole or not at all). samples > 0 first samples fresh before/after answers."""
    data = numbers(lab)
    if samples:
        data["evaluation"] = sample_before_after(lab, samples)
    data["leaderboard"] = leaderboard(lab, lab.session)
    text = report.render(data).encode("utf-8")
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_bytes(text)
        os.replace(tmp, out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"Could not write the report to {out} ({err.strerror or err}).") from err
    return {"out": str(out), "bytes": len(text), "rankings": data["counts"]["rankings"],
            "evaluation": data["evaluation"] is not None, "leaderboard": data["leaderboard"] is not None}
