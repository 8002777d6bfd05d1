"""The arena leaderboard from stored votes: BT ratings with bootstrap intervals, a length-controlled rating
beside them, ranks that separate only non-overlapping intervals, a win-rate matrix and advice in words."""
from __future__ import annotations

import numpy as np

from . import ratings as bt

SCORES = {"A": 1.0, "B": 0.0, "tie": 0.5, "both_bad": 0.5}  # "both bad" is a tie, as FastChat's "tie (bothbad)"


def answer_length(side: dict) -> float:
    """An answer's length in tokens as sampled; in words for a vote stored without it."""
    tokens = side.get("tokens")
    if isinstance(tokens, (int, float)) and not isinstance(tokens, bool):
        return float(tokens)
    return float(len(str(side.get("text", "")).split()))


def battles_from_votes(votes: list[dict], versions: list[str] | None = None) -> bt.Battles:
    """Battles from vote records (data/votes.py): A's version against B's, scored by the verdict."""
    rows = [(v["a"]["version"], v["b"]["version"], SCORES[v["verdict"]]) for v in votes]
    lengths = [(answer_length(v["a"]), answer_length(v["b"])) for v in votes]
    return bt.make_battles(rows, lengths, versions)


def leaderboard(votes: list[dict], rounds: int = bt.BOOTSTRAP_ROUNDS, seed: int = 0, l2: float = bt.L2,
                anchor: str = "base") -> dict:
    """{"leaderboard": rows best first, "votes", "length_coef", "win_rate", "advice"}.

    Each row: version, rating, ci_low, ci_high (95% bootstrap over resampled votes), rank, wins, losses, ties
    (both-bad votes included), both_bad, votes, and lc_rating, lc_ci_low, lc_ci_high: the rating with the
    answers' length difference as a covariate in the same fit (Chatbot Arena's style control). A version that
    only got shorter, against a judge or a person who likes short answers, keeps its raw lead and loses it here.
    """
    if not votes:
        return {"leaderboard": [], "votes": 0, "length_coef": None, "win_rate": {"versions": [], "matrix": []},
                "advice": ["No votes yet: draw a match and vote, or run a judge arena."]}
    battles = battles_from_votes(votes)
    names = battles.versions
    theta, _ = bt.fit_bt(battles, l2=l2)
    rating = bt.to_elo(theta, names, anchor)
    low, high = bt.intervals(bt.bootstrap(battles, rounds, seed, l2, anchor=anchor))
    lc_theta, length_coef = bt.fit_bt(battles, l2=l2, with_length=True)
    lc_rating = bt.to_elo(lc_theta, names, anchor)
    lc_low, lc_high = bt.intervals(bt.bootstrap(battles, rounds, seed, l2, with_length=True, anchor=anchor))
    rank = bt.ranks(low, high)
    tally = bt.records(battles)
    both_bad = {v: 0 for v in names}
    for vote in votes:
        if vote["verdict"] == "both_bad":
            both_bad[vote["a"]["version"]] += 1
            both_bad[vote["b"]["version"]] += 1
    rows = []
    for i, v in enumerate(names):
        t = tally[v]
        rows.append({"version": v, "rating": round(float(rating[i]), 1), "ci_low": round(float(low[i]), 1),
                     "ci_high": round(float(high[i]), 1), "rank": rank[i], **t, "both_bad": both_bad[v],
                     "votes": t["wins"] + t["losses"] + t["ties"], "lc_rating": round(float(lc_rating[i]), 1),
                     "lc_ci_low": round(float(lc_low[i]), 1), "lc_ci_high": round(float(lc_high[i]), 1)})
    rows.sort(key=lambda r: -r["rating"])
    order = [r["version"] for r in rows]
    matrix, counts = bt.win_rates(battles)
    idx = [names.index(v) for v in order]
    cells = [[None if np.isnan(matrix[i, j]) else round(float(matrix[i, j]), 3) for j in idx] for i in idx]
    return {"leaderboard": rows, "votes": len(votes), "length_coef": round(length_coef, 3),
            "win_rate": {"versions": order, "matrix": cells, "counts": [[int(counts[i, j]) for j in idx] for i in idx]},
            "advice": advice(rows, len(votes), anchor)}


def advice(rows: list[dict], votes: int, anchor: str = "base") -> list[str]:
    """What the leaderboard can and cannot say yet, in words: for each neighbour pair whose intervals overlap,
    about how many more votes would separate them (ratings.votes_to_separate); clean sweeps; length."""
    said = []
    for hi, lo in zip(rows, rows[1:]):
        more = bt.votes_to_separate(hi["rating"], hi["ci_low"], lo["rating"], lo["ci_high"], votes)
        if more == 0:
            said.append(f"{hi['version']} is ahead of {lo['version']}: their 95% intervals do not overlap.")
        elif more is None:
            said.append(f"{hi['version']} and {lo['version']} are rated the same so far: more votes may or may "
                        "not separate them.")
        else:
            said.append(f"{hi['version']} leads {lo['version']} by {hi['rating'] - lo['rating']:.0f} points but "
                        f"their intervals overlap: about {more} more vote{'' if more == 1 else 's'} to separate them, "
                        "if the gap holds.")
    for r in rows:
        decided = r["wins"] + r["losses"]
        if r["votes"] and r["ties"] == 0 and decided and (r["wins"] == 0 or r["losses"] == 0):
            what = "won" if r["losses"] == 0 else "lost"
            said.append(f"{r['version']} {what} every one of its {decided} votes: the size of its gap is set by "
                        "the fit's prior, not by the votes (only its direction is known).")
    for r in rows:
        if r["version"] == anchor or not r["votes"]:
            continue
        raw_ahead = r["ci_low"] > anchor_value(rows, anchor)
        lc_ahead = r["lc_ci_low"] > anchor_value(rows, anchor, "lc_rating")
        if raw_ahead and not lc_ahead:
            said.append(f"{r['version']} beats {anchor} on the raw rating but not once the answers' length is "
                        f"controlled for ({r['lc_rating']:.0f}, interval {r['lc_ci_low']:.0f}–{r['lc_ci_high']:.0f})"
                        ": its lead may be length alone.")
    return said


def anchor_value(rows: list[dict], anchor: str, key: str = "rating") -> float:
    """The anchor's rating (key), or the anchor rating itself when the anchor is not on the board."""
    for r in rows:
        if r["version"] == anchor:
            return r[key]
    return bt.ANCHOR_RATING
