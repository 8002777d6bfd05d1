"""Demonstrations: answers a person wrote (SFT data), append-only in demonstrations.jsonl; TRL SFT JSONL in and out.

A demonstration written on a ranking card keeps the answers that card showed: it also counts as a pair
preferred over each of them, so the reward model and DPO learn from it as well as SFT.

Record: {"id", "time", "round", "prompt", "completion", "shown": [texts], "shown_truncated": [flags],
"ranking_id": id or null, "annotator", "policy"}; an undo is a record {"id", "time", "retracts": id}.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

from ..errors import RankingInputError, SessionError
from . import jsonl
from .pairs import Pair, session_pairs
from .preference_files import import_rows

FILE = "demonstrations.jsonl"


def path_of(session_root: Path) -> Path:
    return Path(session_root) / FILE


def _texts(value) -> bool:
    return isinstance(value, list) and all(isinstance(t, str) for t in value)


def demonstration_problem(rec: dict) -> str | None:
    """Why a line of demonstrations.jsonl cannot be used, or None."""
    if not isinstance(rec.get("id"), str):
        return "it has no string 'id'"
    if "retracts" in rec:
        return None if isinstance(rec["retracts"], str) else "its 'retracts' is not an id"
    for key in ("prompt", "completion"):
        if not isinstance(rec.get(key), str) or not rec[key].strip():
            return f"it has no {key}"
    if not _texts(rec.get("shown", [])):
        return "its 'shown' is not a list of texts"
    flags = rec.get("shown_truncated")
    if flags is not None and (not isinstance(flags, list) or len(flags) != len(rec.get("shown", []))):
        return "its 'shown_truncated' does not have one flag per shown answer"
    return None


def make(prompt: str, completion: str, shown: list[str] | None = None, shown_truncated: list[bool] | None = None,
         ranking_id: str | None = None, annotator: str = "human", policy: str = "base", round_: int = 0) -> dict:
    """A new demonstration record, checked; nothing is written."""
    prompt, completion = prompt or "", completion or ""
    if not prompt.strip():
        raise SessionError("A demonstration needs the prompt it answers: generate cards first, or type a prompt.")
    if not completion.strip():
        raise SessionError("The answer you wanted is empty: write it (or start from a card) first.")
    shown = list(shown or [])
    rec = {"id": uuid.uuid4().hex[:12], "time": round(time.time(), 3), "round": int(round_), "prompt": prompt,
           "completion": completion, "shown": shown,
           "shown_truncated": [bool(t) for t in (shown_truncated or [False] * len(shown))],
           "ranking_id": ranking_id, "annotator": annotator, "policy": policy}
    problem = demonstration_problem(rec)
    if problem:
        raise SessionError(f"This demonstration cannot be saved: {problem}.")
    return rec


def append(session_root: Path, records: list[dict]) -> None:
    """Durably append records (flushed and fsynced, all or none)."""
    jsonl.append(path_of(session_root), records)


def read(session_root: Path) -> tuple[list[dict], list[str]]:
    """Active demonstrations (retracted ones removed) and warnings about lines that were skipped."""
    records, warnings = jsonl.read(path_of(session_root), demonstration_problem)
    retracted = {r["retracts"] for r in records if "retracts" in r}
    return [r for r in records if "retracts" not in r and r["id"] not in retracted], warnings


def retraction(target_id: str) -> dict:
    return {"id": uuid.uuid4().hex[:12], "time": round(time.time(), 3), "retracts": target_id}


def demonstration_pairs(demos: list[dict], rankings: list[dict] = ()) -> list[Pair]:
    """(prompt, demonstration, shown answer) for every answer the card showed. A demonstration joins the
    ranking of the same card (same prompt and answers), so both share one group when trained on."""
    cards = {(r["prompt"], tuple(r["completions"])): r["id"] for r in rankings}
    pairs = []
    for d in demos:
        group = d.get("ranking_id") or cards.get((d["prompt"], tuple(d.get("shown", [])))) or d["id"]
        flags = d.get("shown_truncated") or [False] * len(d.get("shown", []))
        pairs += [Pair(d["prompt"], d["completion"], text, group, False, bool(cut))
                  for text, cut in zip(d.get("shown", []), flags) if text.strip() != d["completion"].strip()]
    return pairs


def all_pairs(rankings: list[dict], demos: list[dict]) -> list[Pair]:
    """The pairs of the rankings and of the demonstrations, duplicates (same prompt, chosen, rejected) removed."""
    seen, out = set(), []
    for p in session_pairs(rankings) + demonstration_pairs(demos, rankings):
        key = (p.prompt, p.chosen, p.rejected)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# ---- TRL SFT JSONL ---------------------------------------------------------------------------------------

def export_sft(demos: list[dict], path: Path) -> int:
    """Write demonstrations as TRL's conversational prompt-completion JSONL; the file appears whole or not at
    all. Returns the count."""
    path = Path(path)
    if not path.parent.exists():
        raise RankingInputError(f"Folder {path.parent} does not exist.")
    jsonl.write_lines_atomic(path, [{"prompt": [{"role": "user", "content": d["prompt"]}],
                                     "completion": [{"role": "assistant", "content": d["completion"]}]}
                                    for d in demos])
    return len(demos)


def _content(value, role: str) -> str | None:
    """The text of a prompt or completion field: a string (standard form) or a one-turn message list
    (conversational form; a system message before the user turn is allowed and dropped, the lab adds its own)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        return None
    turns = [m for m in value if m.get("role") != "system"]
    if len(turns) != 1 or turns[0].get("role") != role or not isinstance(turns[0].get("content"), str):
        return None
    return turns[0]["content"]


def read_sft(path: Path) -> list[tuple[str, str]]:
    """(prompt, completion) rows of a TRL prompt-completion JSONL file, conversational or standard. Every line
    is checked before any is used; RankingInputError names the first bad one."""
    rows = []
    for n, row in import_rows(path):
        prompt = _content(row.get("prompt"), "user") if isinstance(row, dict) else None
        completion = _content(row.get("completion"), "assistant") if isinstance(row, dict) else None
        if not prompt or not prompt.strip() or not completion or not completion.strip():
            raise RankingInputError(
                f"{path} line {n} is not a prompt-completion row (\"prompt\" and \"completion\" as non-empty "
                "strings, or one user and one assistant message); nothing was imported.")
        try:
            (prompt + completion).encode("utf-8")
        except UnicodeEncodeError:
            raise RankingInputError(f"{path} line {n} has a lone surrogate (text UTF-8 cannot store); nothing was "
                                    "imported.") from None
        rows.append((prompt.strip(), completion.strip()))
    if not rows:
        raise RankingInputError(f"{path} holds no demonstrations; nothing was imported.")
    return rows
