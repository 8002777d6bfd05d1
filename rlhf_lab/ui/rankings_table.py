"""The rankings table under the cards, and the reward model's agreement with each ranking, filled in later.

Scoring a ranking for the "RM agrees" column costs ~1 s on CPU, so it never runs in the save path: the table
is drawn at once from what is already known, and `fill_agreement` scores the newest rows afterwards (a
follow-up event) and keeps the results per ranking id and reward model.
"""
from __future__ import annotations

import pandas as pd

from ..data.rankings import format_order
from ..errors import LabError

AGREEMENT_ROWS = 10  # the newest 10 rankings are enough to judge agreement
COLUMNS = ["#", "round", "policy", "prompt", "best answer", "BT", "verdict", "order", "annotator", "RM agrees"]
# Long text gets the room; short columns are wide enough for their header on one line at 1400 px.
WIDTHS = ["44px", "70px", "76px", "19%", "27%", "64px", "90px", "80px", "104px", "100px"]
MAX_CHARS = 160  # a cell shows this much; the whole text is on disk and in exports


def _stamp(lab) -> str | None:
    rm = lab.meta().reward_model if lab.has_reward_model else None
    return str(rm.get("trained_at")) if rm else None


def rankings_table(lab, agree: dict, limit: int = 50) -> pd.DataFrame:
    """The newest `limit` rankings, newest first; "RM agrees" only where `agree` already has it. "BT" is the
    best answer's Bradley–Terry score within its prompt (all rankings of that prompt together; mean 1000)."""
    if lab.session is None:
        return pd.DataFrame(columns=COLUMNS)
    stamp = _stamp(lab)
    records = lab.rankings()
    shown = list(enumerate(records, start=1))[-limit:][::-1]
    bt = lab.answer_scores({rec["id"] for _, rec in shown})
    rows = []
    for n, rec in shown:
        result = agree.get((rec["id"], stamp)) if stamp else None
        mark = f"{'✔' if result[0] == result[1] else '✘'} {result[0]}/{result[1]}" if result else ""
        best = rec["completions"][rec["ranking"][0][0]] if rec["ranking"] else ""
        score = bt[rec["id"]][rec["ranking"][0][0]] if rec["id"] in bt else ""
        rows.append([n, rec.get("round", 0), rec.get("policy", ""), rec["prompt"], best, score, rec["verdict"],
                     format_order(rec["ranking"]) if rec["ranking"] else "", rec.get("annotator", ""), mark])
    return pd.DataFrame(rows, columns=COLUMNS)


def fill_agreement(lab, agree: dict) -> bool:
    """Score the newest rankings the reward model has not been checked on; True if anything new was added.
    Gives up quietly while a job owns the model: the next refresh tries again."""
    stamp = _stamp(lab) if lab.session is not None else None
    if stamp is None or lab.jobs.current is not None:
        return False
    added = False
    for rec in lab.rankings()[-AGREEMENT_ROWS:][::-1]:  # newest first: the one just saved is usually cached
        key = (rec["id"], stamp)
        if key in agree:
            continue
        try:
            agree[key] = lab.agreement(rec)  # None for rankings without pairs (all bad, skip, ties)
        except LabError:  # LabBusy: a job started meanwhile
            break
        added = True
    return added
