"""Bradley–Terry ratings (arena/ratings.py, arena/leaderboard.py, arena/answer_scores.py) against hand-computed
values, a brute-force likelihood maximum and an independent optimiser."""
import math

import numpy as np
import pytest
import torch

from rlhf_lab.arena import ratings as bt
from rlhf_lab.arena.answer_scores import answer_scores, ranking_battles
from rlhf_lab.arena.leaderboard import battles_from_votes, leaderboard


def wins(a, b, n):
    return [(a, b, 1.0)] * n


# ---- the fit against hand-computed values ---------------------------------------------------------------------
def test_hand_checked_three_versions():
    """Strengths 4:2:1 (theta = ln 4, ln 2, 0): P(v2 beats v1) = 4/6, P(v1 beats base) = 2/3, P(v2 beats base)
    = 4/5. Battle counts in exactly those ratios make that the maximum-likelihood point (each version's wins
    equal its expected wins), so the Elo ratings are 1000 + 400/ln10 * (ln 2, ln 4) = 1120.4, 1240.8."""
    rows = (wins("v2", "v1", 2) + wins("v1", "v2", 1) + wins("v1", "base", 2) + wins("base", "v1", 1)
            + wins("v2", "base", 4) + wins("base", "v2", 1))
    battles = bt.make_battles(rows)
    theta, coef = bt.fit_bt(battles, l2=0.0)
    elo = dict(zip(battles.versions, bt.to_elo(theta, battles.versions)))
    assert coef == 0.0
    assert elo["base"] == pytest.approx(1000.0, abs=1e-6)
    assert elo["v1"] == pytest.approx(1120.412, abs=1e-3)
    assert elo["v2"] == pytest.approx(1240.824, abs=1e-3)
    # The default prior moves ratings by under a point here (10 battles).
    default = dict(zip(battles.versions, bt.to_elo(bt.fit_bt(battles)[0], battles.versions)))
    assert all(abs(default[v] - elo[v]) < 1.5 for v in elo)
    assert abs(default["v2"] - elo["v2"]) > 0  # but it does act


def test_a_tie_counts_half_a_win_and_half_a_loss():
    """3 wins, 1 loss, 1 tie = 3.5 of 5 points: P = 0.7, gap = 400/ln10 * ln(0.7/0.3) = 147.19 points. A tie is
    also exactly one win plus one loss at half weight (FastChat duplicates battles to count it so)."""
    rows = wins("v1", "base", 3) + wins("base", "v1", 1) + [("base", "v1", 0.5)]
    battles = bt.make_battles(rows)
    elo = dict(zip(battles.versions, bt.to_elo(bt.fit_bt(battles, l2=0.0)[0], battles.versions)))
    assert elo["v1"] - elo["base"] == pytest.approx(bt.SCALE * math.log(0.7 / 0.3), abs=1e-6)
    assert elo["v1"] - elo["base"] == pytest.approx(147.19, abs=0.01)
    split = bt.make_battles(wins("v1", "base", 3) + wins("base", "v1", 1) + [("base", "v1", 1.0), ("v1", "base", 1.0)])
    w = np.array([1, 1, 1, 1, 0.5, 0.5])
    theta_split, _ = bt.fit_bt(split, weights=w, l2=0.0)
    assert bt.to_elo(theta_split, split.versions)[split.versions.index("v1")] == pytest.approx(elo["v1"], abs=1e-6)


def test_bad_scores_are_refused():
    with pytest.raises(ValueError):
        bt.make_battles([("a", "b", 0.7)])


# ---- the fit against a brute-force maximum and an independent optimiser ---------------------------------------------
def random_battles(seed, n=60, k=3, lengths=False):
    rng = np.random.default_rng(seed)
    names = ["base"] + [f"v{i:03d}" for i in range(1, k)]
    strength = rng.normal(0, 1, k)
    rows, lens = [], []
    for _ in range(n):
        a, b = rng.choice(k, 2, replace=False)
        la, lb = rng.integers(5, 120, 2)
        p = 1 / (1 + math.exp(-(strength[a] - strength[b] - 0.5 * (la - lb) / (la + lb))))
        u = rng.random()
        score = 0.5 if rng.random() < 0.15 else float(u < p)
        rows.append((names[a], names[b], score))
        lens.append((la, lb))
    return bt.make_battles(rows, lens if lengths else None, names)


def grid_maximum(battles):
    """The likelihood's maximum (l2 = 0) over (theta_1, theta_2) with theta_0 = 0, by a grid search that zooms in
    three times around the best point; the loss there."""
    x, y = bt.design(battles), battles.score
    w = np.ones(len(battles))
    center, half = np.zeros(2), 4.0
    for _ in range(4):
        axis = np.linspace(-half, half, 81)
        t1, t2 = np.meshgrid(center[0] + axis, center[1] + axis, indexing="ij")
        params = np.stack([np.zeros(t1.size), t1.ravel(), t2.ravel()], axis=1)  # (G, 3)
        z = params @ x.T  # (G, N)
        loss = -(w * (y * bt.log_sigmoid(z) + (1 - y) * bt.log_sigmoid(-z))).sum(axis=1)
        best = int(np.argmin(loss))
        center, half = params[best, 1:], half / 8
    return np.concatenate([[0.0], center]), float(loss[best])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fit_is_the_brute_force_likelihood_maximum(seed):
    battles = random_battles(seed)
    theta, _ = bt.fit_bt(battles, l2=0.0)
    theta = theta - theta[0]  # shift-invariant without a prior
    grid_theta, grid_loss = grid_maximum(battles)
    x, w = bt.design(battles), np.ones(len(battles))
    fit_loss = bt.neg_log_likelihood(theta, x, battles.score, w, 0.0)
    assert fit_loss <= grid_loss + 1e-9
    assert np.allclose(theta, grid_theta, atol=2e-3)  # the last grid step is 4/8**3/40 ~ 2e-4


@pytest.mark.parametrize("seed", [0, 5])
def test_fit_with_prior_and_length_matches_an_independent_optimiser(seed):
    """Newton's answer equals torch L-BFGS on the same objective (prior and length covariate on), its gradient is
    zero by finite differences and no random nearby point has a lower loss."""
    battles = random_battles(seed, n=80, k=4, lengths=True)
    theta, coef = bt.fit_bt(battles, with_length=True)
    params = np.concatenate([theta, [coef]])
    x, y, w = bt.design(battles, with_length=True), battles.score, np.ones(len(battles))

    p = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    xt, yt = torch.tensor(x), torch.tensor(y)
    opt = torch.optim.LBFGS([p], lr=1, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = xt @ p
        loss = -(yt * torch.nn.functional.logsigmoid(z) + (1 - yt) * torch.nn.functional.logsigmoid(-z)).sum() \
            + 0.5 * bt.L2 * (p @ p)
        loss.backward()
        return loss

    opt.step(closure)
    assert np.allclose(params, p.detach().numpy(), atol=1e-6)

    loss = bt.neg_log_likelihood(params, x, y, w, bt.L2)
    eps = 1e-6
    grad = [(bt.neg_log_likelihood(params + eps * e, x, y, w, bt.L2)
             - bt.neg_log_likelihood(params - eps * e, x, y, w, bt.L2)) / (2 * eps) for e in np.eye(len(params))]
    assert np.max(np.abs(grad)) < 1e-5
    rng = np.random.default_rng(seed)
    for scale in (1e-3, 1e-2, 1e-1, 1.0):
        for _ in range(50):
            assert bt.neg_log_likelihood(params + rng.normal(0, scale, len(params)), x, y, w, bt.L2) >= loss


def test_a_clean_sweep_stays_finite_with_the_prior():
    battles = bt.make_battles(wins("v001", "base", 16))
    theta, _ = bt.fit_bt(battles)
    gap = float(np.diff(bt.to_elo(theta, battles.versions)[::-1])[0])
    assert np.isfinite(theta).all() and 500 < gap < 2000


# ---- bootstrap, ranks, win rates, advice -----------------------------------------------------------------------------
def test_bootstrap_is_deterministic_for_a_seed_and_narrows_with_more_votes():
    battles = random_battles(7, n=60)
    one = bt.bootstrap(battles, rounds=100, seed=3)
    assert one.shape == (100, 3)
    assert np.array_equal(one, bt.bootstrap(battles, rounds=100, seed=3))
    assert not np.array_equal(one, bt.bootstrap(battles, rounds=100, seed=4))
    assert np.all(one[:, 0] == 1000.0)  # base is the anchor in every resample
    low, high = bt.intervals(one)
    elo = bt.to_elo(bt.fit_bt(battles)[0], battles.versions)
    assert np.all(low <= elo + 1e-9) and np.all(elo <= high + 1e-9)

    rows = [(battles.versions[a], battles.versions[b], s) for a, b, s in zip(battles.a, battles.b, battles.score)]
    four = bt.make_battles(rows * 4, versions=list(battles.versions))
    low4, high4 = bt.intervals(bt.bootstrap(four, rounds=200, seed=3))
    low1, high1 = bt.intervals(bt.bootstrap(battles, rounds=200, seed=3))
    ratio = (high4 - low4)[1:] / (high1 - low1)[1:]
    assert np.all((ratio > 0.35) & (ratio < 0.7)), ratio  # ~1/sqrt(4): four times the votes, half the width


def test_ranks_separate_only_non_overlapping_intervals():
    low, high = np.array([1100.0, 1000.0, 900.0]), np.array([1200.0, 1150.0, 990.0])
    assert bt.ranks(low, high) == [1, 1, 3]
    assert bt.ranks(np.array([1000.0, 1000.0]), np.array([1010.0, 1010.0])) == [1, 1]


def test_win_rates_and_records_count_ties_half():
    battles = bt.make_battles(wins("v1", "base", 2) + [("base", "v1", 0.5), ("base", "v2", 1.0)])
    rates, counts = bt.win_rates(battles)
    i = {v: n for n, v in enumerate(battles.versions)}
    assert rates[i["v1"], i["base"]] == pytest.approx(2.5 / 3)
    assert rates[i["base"], i["v1"]] == pytest.approx(0.5 / 3)
    assert counts[i["v1"], i["base"]] == 3 and np.isnan(rates[i["v1"], i["v2"]])
    assert bt.records(battles) == {"v1": {"wins": 2, "losses": 0, "ties": 1},
                                   "base": {"wins": 1, "losses": 2, "ties": 1},
                                   "v2": {"wins": 0, "losses": 1, "ties": 0}}


def test_votes_to_separate():
    # facing half-widths 100 + 60 = 160 against a gap of 100: 20 * 1.6^2 = 51.2 votes in all, 32 more.
    assert bt.votes_to_separate(1100.0, 1000.0, 1000.0, 1060.0, 20) == 32
    assert bt.votes_to_separate(1100.0, 1070.0, 1000.0, 1060.0, 20) == 0  # already apart
    assert bt.votes_to_separate(1000.0, 950.0, 1000.0, 1050.0, 20) is None  # equal: no number will do


# ---- the leaderboard from votes, and length control ----------------------------------------------------------------
def vote(a, b, verdict, la=20, lb=20):
    return {"id": "x", "prompt": "p", "a": {"version": a, "text": "", "tokens": la},
            "b": {"version": b, "text": "", "tokens": lb}, "verdict": verdict}


def test_leaderboard_rows_counts_and_win_rate():
    votes = ([vote("v001", "base", "A")] * 6 + [vote("base", "v001", "A")] * 2 + [vote("base", "v001", "tie")]
             + [vote("base", "v001", "both_bad")])
    out = leaderboard(votes, rounds=100, seed=0)
    assert out["votes"] == 10 and [r["version"] for r in out["leaderboard"]] == ["v001", "base"]
    top, base = out["leaderboard"]
    assert (top["wins"], top["losses"], top["ties"], top["both_bad"]) == (6, 2, 2, 1)
    assert base["rating"] == 1000.0 and base["ci_low"] == base["ci_high"] == 1000.0
    # 7 of 10 points: P = 0.7 -> 147 points above base (the prior shaves a fraction of a point)
    assert top["rating"] == pytest.approx(147.2 + 1000, abs=1.0)
    assert top["ci_low"] < top["rating"] < top["ci_high"]
    assert out["win_rate"]["versions"] == ["v001", "base"] and out["win_rate"]["matrix"][0][1] == pytest.approx(0.7)
    assert out["win_rate"]["matrix"][0][0] is None
    assert any("v001" in line for line in out["advice"])
    assert leaderboard([], rounds=100)["leaderboard"] == []


def test_length_control_exposes_a_version_that_only_got_shorter():
    """The voter prefers the shorter answer 80% of the time, whatever the version; v001 is shorter in 40 of 50
    matches. Raw BT puts v001 ahead; with the length covariate the versions are equal (exactly, without the
    prior: P = 0.8 for the shorter answer fits every vote group)."""
    votes = ([vote("v001", "base", "A", 10, 30)] * 32 + [vote("v001", "base", "B", 10, 30)] * 8
             + [vote("v001", "base", "A", 30, 10)] * 2 + [vote("v001", "base", "B", 30, 10)] * 8)
    battles = battles_from_votes(votes)
    raw = bt.to_elo(bt.fit_bt(battles, l2=0.0)[0], battles.versions)
    theta, coef = bt.fit_bt(battles, l2=0.0, with_length=True)
    lc = bt.to_elo(theta, battles.versions)
    i = battles.versions.index("v001")
    assert raw[i] - 1000 == pytest.approx(bt.SCALE * math.log(34 / 16), abs=1e-6)  # 34 of 50 won
    assert lc[i] == pytest.approx(1000.0, abs=1e-6) and coef < 0  # longer A -> less likely to win
    out = leaderboard(votes, rounds=100, seed=0)
    row = out["leaderboard"][0]
    assert row["version"] == "v001" and row["ci_low"] > 1000 and row["lc_ci_low"] < 1000 < row["lc_ci_high"]
    assert any("length alone" in line for line in out["advice"])
    assert out["length_coef"] < 0


# ---- scores of ranked answers within their prompt -------------------------------------------------------------------
def test_ranking_battles():
    assert sorted(ranking_battles([[1], [0, 2], [3]])) == sorted(
        [(1, 0, 1.0), (1, 2, 1.0), (1, 3, 1.0), (0, 2, 0.5), (0, 3, 1.0), (2, 3, 1.0)])


def test_answer_scores_within_prompt():
    records = [
        {"id": "r1", "prompt": "p", "verdict": "ranked", "completions": ["a", "b", "c", "d"],
         "ranking": [[1], [0, 2], [3]]},
        {"id": "r2", "prompt": "q", "verdict": "ranked", "completions": ["x", "y"], "ranking": [[0], [1]]},
        {"id": "r3", "prompt": "q", "verdict": "ranked", "completions": ["y", "z"], "ranking": [[0], [1]]},
        {"id": "r4", "prompt": "q", "verdict": "all_bad", "completions": ["x", "y"], "ranking": []},
    ]
    scores = answer_scores(records)
    a, b, c, d = scores["r1"]
    assert b > a == c > d and np.mean(scores["r1"]) == pytest.approx(1000.0, abs=0.1)
    assert a == pytest.approx(1000.0, abs=0.1)  # symmetric: the tied middle pair sits at the mean
    # q pooled over two rankings: x > y > z on one scale, and y has one score in both records.
    x, y = scores["r2"]
    y2, z = scores["r3"]
    assert x > y == y2 > z and "r4" not in scores
    assert set(answer_scores(records, ids={"r2"})) == {"r2", "r3"}  # only the prompts asked for are fitted
