"""Arena votes: sessions/<name>/votes.jsonl, append-only and fsynced like rankings.jsonl.

One line per vote: {"id", "time", "round", "prompt", "a": {"version", "text", "tokens", "truncated"},
"b": {...}, "verdict": "A" | "B" | "tie" | "both_bad", "annotator": "human" | "judge:<name>", "seed"}.
"a" and "b" are the hidden assignment: which version's answer was shown as A and which as B. An undo is a
new line {"id", "time", "retracts": <vote id>}, never an edit in place. Every line is checked against one
schema on write and on read; a bad line is skipped and reported by number.
"""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from . import jsonl
from .records import retraction_problem
from ..errors import SessionError

FILE = "votes.jsonl"
VERDICTS = ("A", "B", "tie", "both_bad")
_UNDO = threading.Lock()  # two quick undos in one process retract two votes, not the same one twice


def votes_path(session_root: Path) -> Path:
    return Path(session_root) / FILE


def _side_problem(side, name: str) -> str | None:
    if not isinstance(side, dict):
        return f"its {name!r} is not an object with the version and the answer"
    version = side.get("version")
    if not isinstance(version, str) or not version.strip():
        return f"its {name!r} has no version"
    if not isinstance(side.get("text"), str):
        return f"its {name!r} has no answer text"
    tokens = side.get("tokens")
    if tokens is not None and (not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0):
        return f"its {name!r} token count is not a whole number"
    if "truncated" in side and not isinstance(side["truncated"], bool):
        return f"its {name!r} 'truncated' is not true or false"
    return None


def vote_problem(rec: dict) -> str | None:
    """Why a vote record cannot be used, or None."""
    if not isinstance(rec.get("id"), str):
        return "it has no string 'id'"
    prompt = rec.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "it has no prompt"
    for name in ("a", "b"):
        problem = _side_problem(rec.get(name), name)
        if problem:
            return problem
    if rec["a"]["version"] == rec["b"]["version"]:
        return "A and B are the same version"
    if rec.get("verdict") not in VERDICTS:
        return f"its verdict {rec.get('verdict')!r} is not one of {', '.join(VERDICTS)}"
    if not isinstance(rec.get("annotator", ""), str):
        return "its 'annotator' is not a string"
    if "round" in rec and (not isinstance(rec["round"], int) or isinstance(rec["round"], bool)):
        return "its 'round' is not a whole number"
    return None


def line_problem(rec: dict) -> str | None:
    """The check for any line of votes.jsonl: an undo (has 'retracts') or a vote."""
    return retraction_problem(rec) if "retracts" in rec else vote_problem(rec)


def side(version: str, text: str, tokens: int | None = None, truncated: bool = False) -> dict:
    """One side of a match as stored: the version that answered, its answer, its length and whether it was cut."""
    out = {"version": version, "text": text, "truncated": bool(truncated)}
    if tokens is not None:
        out["tokens"] = int(tokens)
    return out


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def make_vote(prompt: str, a: dict, b: dict, verdict: str, annotator: str = "human", round_: int = 0,
              extra: dict | None = None, id_: str | None = None) -> dict:
    """A new vote record, checked against the schema every reader applies; nothing is written."""
    rec = {"id": id_ or new_id(), "time": round(time.time(), 3), "round": int(round_), "prompt": prompt,
           "a": a, "b": b, "verdict": verdict, "annotator": annotator, **(extra or {})}
    problem = vote_problem(rec)
    if problem:
        raise SessionError(f"This vote cannot be saved: {problem}. Nothing was saved.")
    return rec


def append_votes(session_root: Path, records: list[dict]) -> None:
    """Durably append vote records made by make_vote, all in one write: all are saved or none."""
    for rec in records:
        problem = vote_problem(rec)
        if problem:
            raise SessionError(f"This vote cannot be saved: {problem}. Nothing was saved.")
    jsonl.append(votes_path(session_root), records)


def read_votes(session_root: Path) -> tuple[list[dict], list[str]]:
    """Active votes (retracted ones removed), oldest first, and warnings about the lines that were skipped."""
    records, warnings = jsonl.read(votes_path(session_root), line_problem)
    retracted = {r["retracts"] for r in records if "retracts" in r}
    return [r for r in records if "retracts" not in r and r["id"] not in retracted], warnings


def retract_last(session_root: Path, annotator: str | None = None) -> dict:
    """Undo the newest active vote (of `annotator`, if given) by appending a retraction; returns that vote."""
    with _UNDO:
        return _retract_last(session_root, annotator)


def _retract_last(session_root: Path, annotator: str | None) -> dict:
    active, _ = read_votes(session_root)
    mine = [v for v in active if annotator is None or v.get("annotator") == annotator]
    if not mine:
        who = f" by {annotator}" if annotator else ""
        raise SessionError(f"Nothing to undo: this session has no votes{who}.")
    target = mine[-1]
    jsonl.append(votes_path(session_root), [{"id": new_id(), "time": round(time.time(), 3),
                                              "retracts": target["id"]}])
    return target
