"""kto.jsonl: unpaired labels (prompt, completion, label) for TRL's KTOTrainer.

From each ranking, the answers of the best group are desirable and those of the worst group undesirable
(the middle ranks say only "better than some, worse than others" and are left out); every answer of an
"all bad" verdict is undesirable. Cut answers are left out, as in preferences.jsonl.
"""
from __future__ import annotations

from .conversation import Conversation


def labels_of(record: dict) -> dict[int, bool]:
    """{answer index: desirable} for one ranking record."""
    if record.get("verdict") == "all_bad":
        return {i: False for i in range(len(record["completions"]))}
    groups = record.get("ranking") or []
    if record.get("verdict") != "ranked" or len(groups) < 2:
        return {}
    return {**{i: True for i in groups[0]}, **{i: False for i in groups[-1]}}


def kto_rows(records: list[dict], conv: Conversation) -> list[dict]:
    rows, seen = [], set()
    for rec in records:
        cut = rec.get("truncated") or [False] * len(rec["completions"])
        for i, label in labels_of(rec).items():
            key = (rec["prompt"], rec["completions"][i], label)
            if cut[i] or key in seen:
                continue
            seen.add(key)
            rows.append({"prompt": conv.prompt(rec["prompt"]), "completion": conv.answer(rec["completions"][i]),
                         "label": label})
    return rows
