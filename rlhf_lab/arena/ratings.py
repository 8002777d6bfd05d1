"""Bradley–Terry ratings from pairwise battles: the fit, an Elo-like scale, bootstrap intervals, ranks.

A battle is (a, b, score): `score` is 1 when a won, 0 when b won and 0.5 for a tie (a "both bad" vote is a
tie too), as FastChat's elo_analysis.py counts them: a tie is half a win and half a loss in the likelihood.
The model is P(a beats b) = sigmoid(theta_a - theta_b [+ beta * length_feature]), fitted by Newton's method
on the (weighted) log-likelihood with a weak Gaussian prior (`l2`). Everything is plain numpy, float64.

Shapes: N battles, K versions (players), F = K (+1 with the length covariate).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SCALE = 400.0 / math.log(10.0)
"""Elo points per unit of log-odds: a 400-point gap means 10:1 odds, as on Chatbot Arena's leaderboard."""
ANCHOR_RATING = 1000.0
"""The anchor version (`base`, else the mean of all versions) sits here."""
L2 = 0.01
"""Strength of the Gaussian prior on the natural-scale strengths (variance 1/L2 = 100, i.e. ~1700 Elo points
for one standard deviation). Once every version has both won and lost, it moves a rating by well under a
point; it only matters for a clean sweep, whose maximum-likelihood gap is infinite: there it keeps the fit
finite (the advice line then says the gap is set by the prior, not by the votes)."""
BOOTSTRAP_ROUNDS = 200
"""Bootstrap resamples of the battles for the 95% intervals (FastChat uses 100 for its leaderboard)."""


@dataclass(frozen=True)
class Battles:
    """N battles between K versions. a, b: (N,) int indices into `versions`; score: (N,) in {0, 0.5, 1}
    (1 = a won); length: (N,) lengths (tokens) of a's and b's answers as an (N, 2) array, or None."""
    versions: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray
    length: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.a.shape[0])


def make_battles(rows: list[tuple[str, str, float]], lengths: list[tuple[float, float]] | None = None,
                 versions: list[str] | None = None) -> Battles:
    """Battles from (version_a, version_b, score) rows; `versions` fixes the order (default: first seen)."""
    names = list(versions or [])
    for va, vb, _ in rows:
        for v in (va, vb):
            if v not in names:
                names.append(v)
    index = {v: i for i, v in enumerate(names)}
    a = np.array([index[r[0]] for r in rows], dtype=np.int64)
    b = np.array([index[r[1]] for r in rows], dtype=np.int64)
    score = np.array([float(r[2]) for r in rows], dtype=np.float64)
    if np.any((score != 0) & (score != 0.5) & (score != 1)):
        raise ValueError("a battle's score is 1 (a won), 0 (b won) or 0.5 (tie)")
    length = None if lengths is None else np.asarray(lengths, dtype=np.float64).reshape(len(rows), 2)
    return Battles(tuple(names), a, b, score, length)


def length_feature(length: np.ndarray) -> np.ndarray:
    """(N, 2) answer lengths -> (N,) covariate: the normalised difference (len_a - len_b) / (len_a + len_b + 1),
    as Chatbot Arena's style control, divided by its root mean square so its coefficient reads as "per typical
    length gap". Not centred: two answers of equal length get exactly no adjustment. All zeros if every
    battle had equal lengths (the coefficient is then unidentified and stays at 0)."""
    diff = (length[:, 0] - length[:, 1]) / (length[:, 0] + length[:, 1] + 1.0)
    rms = float(np.sqrt(np.mean(diff ** 2))) if diff.size else 0.0
    return diff / rms if rms > 0 else np.zeros_like(diff)


def design(battles: Battles, with_length: bool = False) -> np.ndarray:
    """The logistic-regression design matrix X (N, F): +1 in a's column, -1 in b's, and the length covariate."""
    n, k = len(battles), len(battles.versions)
    x = np.zeros((n, k + int(with_length)))
    rows = np.arange(n)
    x[rows, battles.a] += 1.0
    x[rows, battles.b] -= 1.0
    if with_length:
        if battles.length is None:
            raise ValueError("the length-controlled fit needs the answers' lengths")
        x[:, k] = length_feature(battles.length)
    return x


def log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def neg_log_likelihood(params: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float) -> float:
    """-sum_n w_n [y_n log s(x_n . p) + (1 - y_n) log s(-x_n . p)] + l2/2 |p|^2: with y = 0.5 a tie counts as
    half a win and half a loss. params: (F,), x: (N, F), y, w: (N,)."""
    z = x @ params
    return float(-(w * (y * log_sigmoid(z) + (1 - y) * log_sigmoid(-z))).sum() + 0.5 * l2 * params @ params)


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = L2, start: np.ndarray | None = None,
                 tol: float = 1e-10, max_iter: int = 200) -> np.ndarray:
    """The minimiser (F,) of neg_log_likelihood by Newton's method with backtracking.

    The objective is convex; for l2 > 0 strictly, so the minimum is unique. With l2 = 0 the BT strengths are
    only defined up to a common shift: the pseudo-inverse step moves within the identified directions (the
    design's rows sum to zero over the version columns, so the shift never changes the likelihood)."""
    params = np.zeros(x.shape[1]) if start is None else start.astype(np.float64).copy()
    loss = neg_log_likelihood(params, x, y, w, l2)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(x @ params)))
        grad = x.T @ (w * (p - y)) + l2 * params
        if np.max(np.abs(grad)) < tol:
            break
        hess = (x * (w * p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        t = 1.0
        while t > 1e-12:  # backtrack until the loss does not rise (Newton overshoots far from the optimum)
            trial = params - t * step
            trial_loss = neg_log_likelihood(trial, x, y, w, l2)
            if trial_loss <= loss + 1e-12 * abs(loss):
                break
            t *= 0.5
        else:
            break
        params, loss = trial, trial_loss
        if np.max(np.abs(t * step)) < 1e-12:
            break
    return params


def fit_bt(battles: Battles, weights: np.ndarray | None = None, l2: float = L2, with_length: bool = False,
           start: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(theta (K,), length coefficient): natural-scale strengths, and beta of the length covariate (0 without
    it). weights: (N,) how many times each battle counts (a bootstrap resample), default 1 each."""
    x = design(battles, with_length)
    w = np.ones(len(battles)) if weights is None else np.asarray(weights, dtype=np.float64)
    params = fit_logistic(x, battles.score, w, l2, start)
    k = len(battles.versions)
    return params[:k], float(params[k]) if with_length else 0.0


def to_elo(theta: np.ndarray, versions: tuple[str, ...] | list[str], anchor: str = "base") -> np.ndarray:
    """Natural-scale strengths (..., K) -> Elo-like ratings: SCALE * theta, shifted so that `anchor` is at
    ANCHOR_RATING, or the mean of all versions when the anchor is not among them."""
    theta = np.asarray(theta, dtype=np.float64)
    ref = theta[..., list(versions).index(anchor)] if anchor in versions else theta.mean(axis=-1)
    return ANCHOR_RATING + SCALE * (theta - np.asarray(ref)[..., None])


def bootstrap(battles: Battles, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0, l2: float = L2,
              with_length: bool = False, anchor: str = "base") -> np.ndarray:
    """(rounds, K) Elo ratings, each fitted on N battles drawn with replacement from the N battles.

    Deterministic for a seed. A version that drops out of a resample keeps the prior's pull only; with the
    anchor it is then placed at the anchor, as FastChat's weighted refit does too."""
    if rounds < 1:
        raise ValueError("bootstrap needs at least one round")
    rng = np.random.default_rng(seed)
    n = len(battles)
    x = design(battles, with_length)
    start = fit_logistic(x, battles.score, np.ones(n), l2)
    k = len(battles.versions)
    out = np.empty((rounds, k))
    for r in range(rounds):
        weights = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        params = fit_logistic(x, battles.score, weights, l2, start)
        out[r] = to_elo(params[:k], battles.versions, anchor)
    return out


def intervals(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals (K,), (K,) of bootstrap samples (R, K)."""
    tail = (1.0 - level) / 2.0 * 100.0
    return np.percentile(samples, tail, axis=0), np.percentile(samples, 100.0 - tail, axis=0)


def ranks(low: np.ndarray, high: np.ndarray) -> list[int]:
    """Rank of each version: 1 + the number of versions whose whole interval lies above its interval. Versions
    whose intervals overlap share a rank, so a rank never claims a difference the votes cannot show."""
    return [1 + int(np.sum(low > high[i])) for i in range(len(low))]


def records(battles: Battles) -> dict[str, dict[str, int]]:
    """Wins, losses and ties (half-point battles) per version."""
    out = {v: {"wins": 0, "losses": 0, "ties": 0} for v in battles.versions}
    for a, b, s in zip(battles.a, battles.b, battles.score):
        va, vb = battles.versions[a], battles.versions[b]
        if s == 0.5:
            out[va]["ties"] += 1
            out[vb]["ties"] += 1
        else:
            winner, loser = (va, vb) if s == 1 else (vb, va)
            out[winner]["wins"] += 1
            out[loser]["losses"] += 1
    return out


def win_rates(battles: Battles) -> tuple[np.ndarray, np.ndarray]:
    """(K, K) share of battles the row version won against the column version (ties count half; NaN where
    they never met) and (K, K) battle counts."""
    k = len(battles.versions)
    points, counts = np.zeros((k, k)), np.zeros((k, k))
    for a, b, s in zip(battles.a, battles.b, battles.score):
        points[a, b] += s
        points[b, a] += 1.0 - s
        counts[a, b] += 1
        counts[b, a] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, points / np.maximum(counts, 1), np.nan), counts


def votes_to_separate(rating_hi: float, low_hi: float, rating_lo: float, high_lo: float,
                      votes: int) -> int | None:
    """About how many more votes (of the same kind as the `votes` so far) would make the two 95% intervals stop
    overlapping; 0 when they already do not, None when the two ratings are equal (no number will do).

    How: the gap between the two ratings is assumed to stay as measured, and the interval half-widths that face
    each other (the higher version's lower half, the lower version's upper half) to shrink as 1/sqrt(votes),
    as a standard error does. They separate once (h_hi + h_lo) * sqrt(votes / total) < gap, i.e. at
    total = votes * ((h_hi + h_lo) / gap)^2. A rough guide: the gap itself moves as votes come in."""
    gap = rating_hi - rating_lo
    facing = (rating_hi - low_hi) + (high_lo - rating_lo)
    if low_hi > high_lo:
        return 0
    if gap <= 1e-9 or votes <= 0:
        return None
    total = votes * (facing / gap) ** 2
    return max(1, math.ceil(total - votes))
