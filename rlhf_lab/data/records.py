"""The one schema every line of rankings.jsonl is checked against, on write and on read.

A line that parses as JSON but has the wrong shape (a list where an id belongs, a ranking that names a card
that does not exist) is skipped and reported by line number, like a torn line, instead of breaking every
reader downstream (pairs, export, training).
"""
from __future__ import annotations

VERDICTS = ("ranked", "all_bad", "skipped")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def ranking_problem(ranking, k: int) -> str | None:
    """Why `ranking` is not a list of non-empty groups of card indices that places each of k cards once."""
    if not isinstance(ranking, list) or not all(isinstance(g, list) and g for g in ranking):
        return f"its ranking {ranking!r} is not a list of non-empty groups of card indices"
    flat = [i for g in ranking for i in g]
    if not all(_is_int(i) for i in flat) or sorted(flat) != list(range(k)):
        return f"its ranking {ranking!r} does not place each of its {k} answers exactly once"
    return None


def retraction_problem(rec: dict) -> str | None:
    if not isinstance(rec.get("id"), str) or not isinstance(rec.get("retracts"), str):
        return "an undo record needs a string 'id' and a string 'retracts'"
    return None


def ranking_record_problem(rec: dict) -> str | None:
    """Why a ranking record cannot be used, or None. Optional keys are checked only when present."""
    if not isinstance(rec.get("id"), str):
        return "it has no string 'id'"
    prompt = rec.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "it has no prompt"
    completions = rec.get("completions")
    if not isinstance(completions, list) or not completions or not all(isinstance(c, str) for c in completions):
        return "its 'completions' is not a non-empty list of texts"
    verdict = rec.get("verdict")
    if verdict not in VERDICTS:
        return f"its verdict {verdict!r} is not one of {', '.join(VERDICTS)}"
    if verdict == "ranked":
        problem = ranking_problem(rec.get("ranking"), len(completions))
        if problem:
            return problem
    elif not isinstance(rec.get("ranking", []), list):
        return "its 'ranking' is not a list"
    truncated = rec.get("truncated")
    if truncated is not None and (not isinstance(truncated, list) or len(truncated) != len(completions)):
        return "its 'truncated' does not have one flag per answer"
    if "round" in rec and not _is_int(rec["round"]):
        return "its 'round' is not a whole number"
    for key in ("annotator", "policy"):
        if key in rec and not isinstance(rec[key], str):
            return f"its {key!r} is not a string"
    return None


def record_problem(rec: dict) -> str | None:
    """The check for any line of rankings.jsonl: an undo (has 'retracts') or a ranking."""
    return retraction_problem(rec) if "retracts" in rec else ranking_record_problem(rec)
