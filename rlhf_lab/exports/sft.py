"""sft.jsonl: the answers a person wrote (demonstrations.jsonl), as conversational prompt / completion for
TRL's SFTTrainer.

A demonstration line is {"id", "prompt", "completion", ...}; an undo is a line {"id", "retracts": id}, as in
rankings.jsonl. Lines of another shape are skipped and reported.
"""
from __future__ import annotations

from pathlib import Path

from ..data import jsonl
from .conversation import Conversation


def _problem(rec: dict) -> str | None:
    if "retracts" in rec:
        return None if isinstance(rec.get("retracts"), str) else "its 'retracts' is not an id"
    if not isinstance(rec.get("prompt"), str) or not rec["prompt"].strip():
        return "it has no prompt"
    return None if isinstance(rec.get("completion"), str) else "it has no 'completion' text"


def read_demonstrations(path: Path) -> tuple[list[dict], list[str]]:
    """Active demonstrations (retracted ones removed) and warnings about skipped lines."""
    records, warnings = jsonl.read(Path(path), _problem)
    retracted = {r["retracts"] for r in records if "retracts" in r}
    return [r for r in records if "retracts" not in r and r.get("id") not in retracted], warnings


def sft_rows(demonstrations: list[dict], conv: Conversation) -> list[dict]:
    return [{"prompt": conv.prompt(d["prompt"]), "completion": conv.answer(d["completion"])} for d in demonstrations]
