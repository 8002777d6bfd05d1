"""Warnings in words, from the numbers a run logged: a weak reward model, length collapse, over-optimisation.

Pure functions over metric rows, so the UI, the CLI and notebooks say the same thing and tests can check
them on hand-made rows.
"""
from __future__ import annotations

from . import metrics as M

HELD_OUT_TARGET = 40  # held-out pairs at which an accuracy's 95% interval is about +-15 points


def reward_warnings(summary: dict, prompts: int | None = None, eval_fraction: float = 0.25) -> list[str]:
    """What to worry about in a reward-model training summary (the row with "summary": True)."""
    out = []
    acc, ci, n = summary.get(M.EVAL_RM_ACCURACY), summary.get("eval/accuracy_ci"), summary.get("pairs_eval", 0)
    if acc is not None and ci and ci[0] <= 0.5:
        advice = ""
        if prompts and n < HELD_OUT_TARGET:
            per_prompt = max(1.0, n / max(1, round(prompts * eval_fraction)))
            more = max(4, round(HELD_OUT_TARGET / per_prompt / eval_fraction) - prompts)
            advice = f" Rank about {more} more prompts, then train again."
        out.append(f"Held-out accuracy {acc:.0%} (95% interval {ci[0]:.0%}–{ci[1]:.0%}) on {n} pairs cannot be "
                   f"told apart from chance (50%): PPO against this reward model would chase noise.{advice}")
    if lucky_epoch(summary):
        out.append(f"Held-out accuracy {acc:.0%} leans on the epoch these pairs chose: scored at the epoch the "
                   f"other held-out prompts choose, it is {summary[M.EVAL_RM_ACCURACY_LOPO]:.0%}. Trust the "
                   "lower figure; ranking more prompts steadies both.")
    if summary.get("stopped") == "time":
        steps = summary.get("step") or 0
        done = (f"after {steps} step{'' if steps == 1 else 's'}, with {summary.get('epochs', 0)} of up to "
                f"{summary.get('epochs_max', '?')} epochs begun" if steps else "before its first step: nothing was "
                "trained or saved")
        out.append(f"Training stopped at its time budget ({summary.get('max_seconds') or 0:g} s) {done}. The same "
                   "budget trains less on a slower CPU; without one (0 in the Reward tab, `train-rm` without "
                   "--max-seconds) training stops by epochs and held-out loss only, and every machine trains the "
                   "same model.")
    r2 = summary.get(M.RM_LENGTH_R2)
    if r2 is not None and r2 >= 0.5:
        out.append(f"Answer length alone explains {r2:.0%} of this reward model's scores: it may reward "
                   "shorter (or longer) answers rather than what you ranked for.")
    against, n_against = summary.get(M.EVAL_RM_ACCURACY_AGAINST_LENGTH), summary.get("pairs_against_length") or 0
    if against is not None and n_against >= 5 and against <= 0.5:
        out.append(f"On the {n_against} held-out pairs where the {summary.get('length_rule', 'longer')} answer "
                   f"lost, it is right only {against:.0%} of the time: it learned answer length more than what "
                   "you ranked for. Rank pairs where length and your taste disagree, then train again.")
    return out


def lucky_epoch(summary: dict) -> bool:
    """Whether the held-out accuracy owes 3 pairs or more, and a tenth of them or more, to the held-out
    pairs having chosen the epoch kept (eval/reward_accuracy against eval/reward_accuracy_lopo)."""
    acc, lopo, n = summary.get(M.EVAL_RM_ACCURACY), summary.get(M.EVAL_RM_ACCURACY_LOPO), summary.get("pairs_eval") or 0
    if acc is None or lopo is None:
        return False
    lost = round((acc - lopo) * n * 2) / 2  # in pairs; ties count half
    return lost >= 3 and lost >= 0.1 * n


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def ppo_warnings(rows: list[dict], window: int = 3) -> list[str]:
    """What to worry about in a PPO run's rows (oldest first): compares the first and last `window` steps."""
    if len(rows) < 2:
        return []
    w = max(1, min(window, len(rows) // 2))
    first, last = rows[:w], rows[-w:]
    out = []
    len0, len1 = _mean(first, M.LENGTH), _mean(last, M.LENGTH)
    if len0 and len1 is not None and len1 < 0.6 * len0:
        out.append(f"Answers got {1 - len1 / len0:.0%} shorter ({len0:.0f} → {len1:.0f} tokens). If you did not "
                   "rank for brevity, the policy is exploiting a length bias of the reward model.")
    fin0, fin1 = _mean(first, M.FINISHED), _mean(last, M.FINISHED)
    if fin0 is not None and fin1 is not None and fin1 < fin0 - 0.25:
        out.append(f"Fewer answers finish ({fin0:.0%} → {fin1:.0%} end with EOS): they are being cut off.")
    s0, s1 = _mean(first, M.SCORES), _mean(last, M.SCORES)
    g0, g1 = _mean(first, M.GOLD_SCORES), _mean(last, M.GOLD_SCORES)
    if None not in (s0, s1, g0, g1) and s1 > s0 and g1 < g0:
        out.append(f"The reward model's score rose ({s0:+.2f} → {s1:+.2f}) while the judge's fell ({g0:.2f} → "
                   f"{g1:.2f}): PPO is over-optimising the reward model. Stop here, rank the new answers and "
                   "retrain it.")
    return out
