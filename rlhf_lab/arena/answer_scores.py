"""A Bradley–Terry score for every ranked answer, within its prompt (the seeds' Elo idea).

A ranking of K answers is read as the pairwise battles it implies: an answer in a better group beats every
answer in a worse group, answers in the same group tie. All rankings of the same prompt are fitted together,
answers with the same text being one player, so a prompt ranked several times gets one consistent scale.
"""
from __future__ import annotations

from . import ratings as bt

ANSWER_L2 = 1.0
"""Prior strength for answers. One ranking is a total order, whose maximum-likelihood gaps are infinite, so
here the prior sets the scale: a unit Gaussian prior (as FastChat's first BT fit had through sklearn's default
C=1) puts the best of four strictly ranked answers 138 points above their mean (1000) and the worst 138 below;
answers that tie get the same score."""


def ranking_battles(ranking: list[list[int]]) -> list[tuple[int, int, float]]:
    """(i, j, score) for every pair of answers a ranking orders (groups best first): 1 = i won, 0.5 = tie."""
    out = []
    for g, group in enumerate(ranking):
        out += [(group[x], group[y], 0.5) for x in range(len(group)) for y in range(x + 1, len(group))]
        for worse in ranking[g + 1:]:
            out += [(i, j, 1.0) for i in group for j in worse]
    return out


def answer_scores(records: list[dict], ids: set[str] | None = None, l2: float = ANSWER_L2) -> dict[str, list[float]]:
    """{ranking id: a score per completion} for every active ranked record (or only the prompts of the records
    in `ids`: a fit per prompt costs ~1 ms); each prompt's answers have mean ANCHOR_RATING (1000). Records that
    are not "ranked" (all bad, skipped) get no scores."""
    wanted = None if ids is None else {r["prompt"] for r in records if r["id"] in ids}
    by_prompt: dict[str, list[dict]] = {}
    for rec in records:
        if rec.get("verdict") == "ranked" and rec.get("ranking") and (wanted is None or rec["prompt"] in wanted):
            by_prompt.setdefault(rec["prompt"], []).append(rec)
    out: dict[str, list[float]] = {}
    for recs in by_prompt.values():
        players: list[str] = []
        for rec in recs:
            players += [c for c in rec["completions"] if c not in players]
        rows = []
        for rec in recs:
            texts = rec["completions"]
            rows += [(texts[i], texts[j], s) for i, j, s in ranking_battles(rec["ranking"])]
        if not rows:
            continue
        battles = bt.make_battles(rows, versions=players)
        theta, _ = bt.fit_bt(battles, l2=l2)
        elo = bt.to_elo(theta, battles.versions, anchor="")  # no anchor: the prompt's answers average 1000
        score = dict(zip(battles.versions, elo))
        for rec in recs:
            out[rec["id"]] = [round(float(score[c]), 1) for c in rec["completions"]]
    return out
