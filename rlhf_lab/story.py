"""The story panel: this session's numbers as short plain-language lines a presenter can read aloud.

Pure functions over plain numbers (counts, the reward-model summary, metric rows, an evaluation result), so the
UI, the report and tests say the same thing.
"""
from __future__ import annotations

from . import metrics as M
from .diagnostics import lucky_epoch

CHANCE = 0.5


def _fixed(value: float, digits: int = 1) -> str:
    """value with `digits` decimals, never "-0.0" (a KL estimate of -0.01 reads as 0.0)."""
    return f"{round(value, digits) or 0.0:.{digits}f}"


def _has(row: dict, key: str) -> bool:
    """The row has a number for key: a row from a metrics DataFrame holds NaN where that step logged nothing
    (DPO's held-out rows have no training accuracy)."""
    value = row.get(key)
    return value is not None and value == value


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if _has(r, key)]
    return sum(values) / len(values) if values else None


def ends(rows: list[dict], key: str, window: int = 3) -> tuple[float, float] | None:
    """Mean of `key` over the first and the last `window` rows (fewer for short runs), or None."""
    part = [r for r in rows if _has(r, key)]
    if len(part) < 2:
        return None
    w = max(1, min(window, len(part) // 2))
    return _mean(part[:w], key), _mean(part[-w:], key)


def latest_run(rows: list[dict]) -> list[dict]:
    """The rows of the latest round (one PPO or DPO run), oldest first."""
    if not rows:
        return []
    last = rows[-1].get("round")
    return [r for r in rows if r.get("round") == last]


def rankings_line(counts: dict, judge: str | None = None) -> str:
    n, pairs = counts.get("rankings", 0), counts.get("pairs", 0)
    if not n:
        return "Nothing ranked yet: rank a few prompts' answers, or let a judge do it on autopilot."
    who = f"The judge “{judge}” ranked" if judge else "You ranked"
    return f"{who} answers to {n} prompt{'s' * (n != 1)}: {pairs} pairs for the reward model to learn from."


def reward_lines(rm: dict | None, judge: str | None = None) -> list[str]:
    """Held-out agreement in counts, whether it beats a coin, and the length bias."""
    if not rm or rm.get(M.EVAL_RM_ACCURACY) is None or not rm.get("pairs_eval"):
        return []
    n, acc = int(rm["pairs_eval"]), float(rm[M.EVAL_RM_ACCURACY])
    whom = "the judge" if judge else "you"
    out = [f"Your reward model agrees with {whom} on {round(acc * n)} of {n} pairs it never saw ({acc:.0%}; "
           f"a coin toss would get {CHANCE:.0%})."]
    if lucky_epoch(rm):
        lopo = float(rm[M.EVAL_RM_ACCURACY_LOPO])
        out.append(f"Part of that was a lucky choice of epoch: scored at the epoch the other held-out prompts "
                   f"chose, it agrees on {round(lopo * n)} of {n} ({lopo:.0%}).")
    ci = rm.get("eval/accuracy_ci")
    if ci and ci[0] <= CHANCE:
        out.append("With so few held-out pairs that cannot be told apart from a coin toss yet: rank more prompts.")
    r2 = rm.get(M.RM_LENGTH_R2)
    if r2 is not None and r2 >= 0.5:
        out.append(f"Answer length alone explains {r2:.0%} of its scores: it may mostly reward length.")
    against, n_against = rm.get(M.EVAL_RM_ACCURACY_AGAINST_LENGTH), rm.get("pairs_against_length") or 0
    if against is not None and n_against >= 5:  # fewer pairs say nothing either way
        low, high = rm.get("eval/against_length_ci") or (0.0, 1.0)
        verdict = ("it reads more than length" if low > CHANCE else "mostly length" if high < CHANCE
                   else "no better than chance, so far")
        out.append(f"Where length points the wrong way ({n_against} held-out pairs) it is right on "
                   f"{round(against * n_against)}: {verdict}.")
    return out


def length_change(before: float, after: float) -> str | None:
    """"43% longer" or "25% shorter" when the mean answer length moved by a tenth or more, else None."""
    change = after / before - 1 if before else 0.0
    if abs(change) < 0.1:
        return None
    return f"{abs(change):.0%} {'shorter' if change < 0 else 'longer'}"


def length_line(before: float, after: float) -> str:
    change = length_change(before, after)
    if change is None:
        return f"Answer length stayed about the same ({before:.0f} → {after:.0f} tokens)."
    return f"Answers got {change} ({before:.0f} → {after:.0f} tokens) — is that what you wanted?"


def ppo_lines(rows: list[dict], stop: dict | None = None) -> list[str]:
    """The latest PPO run in words: reward and KL, length, finished share, the judge's (gold) score, and why it
    stopped early where it stopped at the KL limit (`stop`: that run's {"round", "message"})."""
    rows = latest_run(rows)
    scores, kl = ends(rows, M.SCORES), ends(rows, M.KL)
    if scores is None or kl is None:
        return []
    rise = scores[1] - scores[0]
    if abs(rise) < 0.05:  # "lowered the reward by 0.0" reads as a contradiction
        out = [f"PPO left the reward where it was while drifting {_fixed(kl[1])} nats from the original model."]
    else:
        verb = "raised" if rise > 0 else "lowered"
        out = [f"PPO {verb} the reward by {abs(rise):.1f} while drifting {_fixed(kl[1])} nats from the original "
               "model."]
    length = ends(rows, M.LENGTH)
    if length and length[0]:
        out.append(length_line(*length))
    done = ends(rows, M.FINISHED)
    if done and abs(done[1] - done[0]) >= 0.1:
        out.append(f"{done[1]:.0%} of answers now finish, against {done[0]:.0%} at the start.")
    gold = ends(rows, M.GOLD_SCORES)
    if gold:
        line = f"The judge's own score went from {gold[0]:.2f} to {gold[1]:.2f}"
        if rise >= 0.05 and gold[1] < gold[0]:  # the same threshold as "raised" above
            line += ", falling while the reward model's rose: PPO is gaming the reward model"
        out.append(line + ".")
    if stop and stop.get("message") and stop.get("round") == rows[-1].get("round"):
        out.append(f"PPO {stop['message']}")
    return out


def dpo_lines(rows: list[dict]) -> list[str]:
    """The latest DPO run: how often the policy prefers the chosen answer, by TRL's `rewards/accuracies`."""
    rows = latest_run(rows)
    acc = ends(rows, "rewards/accuracies")
    if acc is None:
        return []
    return [f"DPO: the policy now prefers the chosen answer in {acc[1]:.0%} of training pairs "
            f"(from {acc[0]:.0%})."]


def evaluation_line(result: dict | None) -> str | None:
    if not result or result.get("policy_score") is None:
        return None
    line = (f"On {result['prompts']} fresh samples the judge “{result['judge']}” scores the new policy "
            f"{result['policy_score']:.2f} and the original model {result['reference_score']:.2f} "
            f"(KL {_fixed(result['kl'])} nats).")
    low, high = result.get("score_gain_ci") or (None, None)
    if low is None or high is None:  # one prompt, or an evaluation saved before the interval was kept
        return line
    verdict = ("more than sampling noise" if low > 0 else "a loss beyond sampling noise" if high < 0
               else "within sampling noise")
    return (f"{line} The difference, {result['score_gain']:+.2f}, is {verdict} "
            f"(95% interval {low:+.2f} to {high:+.2f} over the same prompts).")


def evaluation_length_line(result: dict | None) -> str | None:
    """How the evaluation's policy answers differ in length and finishing from the original model's, when
    by enough to ask: a tenth longer or shorter (as for PPO's rollouts), or fewer finishing by two answers
    and 15 points or more. DPO and SFT sample nothing while training, so for them this is the only place the
    story can show length drift."""
    if not result or result.get("policy_length") is None or not result.get("reference_length"):
        return None
    n, before, after = result["prompts"], result["reference_length"], result["policy_length"]
    change = length_change(before, after)
    done, done_before = (round(result.get(k, 0.0) * n) for k in ("policy_finished", "reference_finished"))
    fewer = done_before - done >= 2 and (done_before - done) / n >= 0.15
    if not (change or fewer):
        return None
    lead = "In those samples" if result.get("policy_score") is not None else f"On {n} fresh samples"
    if change:
        text = (f"{lead} the new policy's answers are {change} than the original model's "
                f"({before:.0f} → {after:.0f} tokens)")
        if fewer:
            text += f", and {done} of {n} finish against {done_before} of {n}"
    else:
        text = f"{lead} {done} of the new policy's {n} answers finish against {done_before} of the original model's"
    return f"{text} — is that what you wanted?"


def story(counts: dict, rm: dict | None = None, ppo_rows: list[dict] | None = None,
          evaluation: dict | None = None, judge: str | None = None, dpo_rows: list[dict] | None = None,
          ppo_stop: dict | None = None) -> list[str]:
    """Every line that has numbers behind it, in the order of the loop."""
    lines = [rankings_line(counts, judge), *reward_lines(rm, judge), *ppo_lines(ppo_rows or [], ppo_stop),
             *dpo_lines(dpo_rows or []), evaluation_line(evaluation), evaluation_length_line(evaluation)]
    return [line for line in lines if line]
