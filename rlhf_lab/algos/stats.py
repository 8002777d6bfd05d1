"""Small statistics for honest reporting: confidence intervals for an accuracy and for a mean gain, how much
length explains."""
from __future__ import annotations

import math


def wilson_interval(correct: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion correct / n (sensible at small n and near 0 or 1).

    Held-out pairs that share an answer are not independent, so for reward-model accuracy this interval is
    somewhat too narrow; it still says when "70% on 10 pairs" is indistinguishable from chance.
    """
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


LOSS_TOLERANCE = 1e-4
"""Reward training keeps a later evaluation only when its held-out loss is lower by more than this."""


def unselected_accuracy(history: list[dict[str, tuple[float, float, int]]],
                        tolerance: float = LOSS_TOLERANCE) -> float | None:
    """Held-out accuracy with each prompt scored at an evaluation it did not choose.

    history[e][prompt] = (loss sum, correct, pairs) of one held-out prompt at evaluation e. Reward training
    keeps the evaluation with the lowest held-out loss, so the held-out accuracy there is read on the pairs
    that chose it: a little optimistic. Here each prompt is scored at the evaluation the other prompts' loss
    picks (the same rule: the first whose mean loss is lower by more than `tolerance`), leaving one prompt
    out at a time. An estimate of how much that choice flatters, not a clean test: when training stopped was
    still decided on all the held-out prompts. None with fewer than two prompts.
    """
    prompts = sorted({p for evaluation in history for p in evaluation})
    if len(prompts) < 2:
        return None
    correct = pairs = 0.0
    for left_out in prompts:
        best, best_loss = None, math.inf
        for e, evaluation in enumerate(history):
            rest = [v for p, v in evaluation.items() if p != left_out]
            n = sum(v[2] for v in rest)
            loss = sum(v[0] for v in rest) / n if n else math.inf
            if loss < best_loss - tolerance:
                best, best_loss = e, loss
        if best is None or left_out not in history[best]:
            continue
        correct += history[best][left_out][1]
        pairs += history[best][left_out][2]
    return correct / pairs if pairs else None


# Two-sided 95% critical values of Student's t for 1..30 degrees of freedom (any statistics table).
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t_critical(df: int) -> float:
    """Two-sided 95% critical value of Student's t: the table to 30 degrees of freedom, beyond it the
    Cornish-Fisher expansion around 1.96 (within 0.001 of the exact value there)."""
    if df < 1:
        raise ValueError("t needs at least one degree of freedom")
    if df <= len(T_975):
        return T_975[df - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df)


def mean_interval(values: list[float]) -> tuple[float, float | None, float | None]:
    """Mean of `values` and its 95% t interval: for paired differences (one per prompt, policy less
    reference), whether a gain is more than sampling noise. One value gives no interval (None, None)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return mean, None, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_critical(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def r_squared(x: list[float], y: list[float]) -> float:
    """Share of the variance of y a straight line in x explains (squared Pearson correlation); 0 if either
    is constant."""
    n = len(x)
    if n < 2:
        return 0.0
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return 0.0
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    return sxy * sxy / (sxx * syy)


def length_rule(train: list[tuple[int, int]], held: list[tuple[int, int]]) -> dict:
    """The "it is just length" baseline for preference pairs, each (chosen length, rejected length).

    The rule is fitted on the training pairs: prefer the longer answer if longer ones won more often there,
    else the shorter. On the held-out pairs it reports the rule's accuracy (equal lengths count half) and
    which pairs it gets wrong: there length points the other way, so a reward model can only be right
    on them by reading content. Returns {"longer_wins", "accuracy", "against"} (indices into held).
    """
    longer = sum(1 for c, r in train if c > r)
    shorter = sum(1 for c, r in train if c < r)
    longer_wins = longer >= shorter
    right = [(c > r) if longer_wins else (c < r) for c, r in held]
    ties = [c == r for c, r in held]
    correct = sum(1.0 if ok else 0.5 if tie else 0.0 for ok, tie in zip(right, ties))
    return {"longer_wins": longer_wins, "accuracy": correct / len(held) if held else None,
            "against": [i for i, (ok, tie) in enumerate(zip(right, ties)) if not ok and not tie]}
