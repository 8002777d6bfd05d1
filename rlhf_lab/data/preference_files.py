"""Preference pairs to and from JSONL files in the TRL / OpenRLHF column layout (prompt, chosen, rejected)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

from ..errors import RankingInputError
from . import jsonl
from .pairs import Pair


def export_trl(pairs: list[Pair], path: Path) -> int:
    """Write pairs as TRL / OpenRLHF preference JSONL (prompt, chosen, rejected); returns the count.
    The file appears whole or not at all (written beside it, then renamed)."""
    path = Path(path)
    if not path.parent.exists():
        raise RankingInputError(f"Folder {path.parent} does not exist.")
    jsonl.write_lines_atomic(path, [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs])
    return len(pairs)


def _row_problem(row) -> str | None:
    if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("prompt", "chosen", "rejected")):
        return "is not a JSON object with prompt, chosen and rejected strings"
    if not row["prompt"].strip():
        return "has an empty prompt"
    for key in ("prompt", "chosen", "rejected"):
        try:
            row[key].encode("utf-8")
        except UnicodeEncodeError:
            return f"has a lone surrogate in {key!r} (text UTF-8 cannot store)"
    return None


def import_rows(path: Path, on_progress: Callable[[int, int], None] | None = None,
                every: int = 10000) -> Iterator[tuple[int, object]]:
    """(line number, the line's JSON or None where it does not parse) for every non-blank line of a file to
    import. Lines are split on "\n" only (never splitlines(), which also splits inside texts holding U+2028 or
    U+2029). on_progress(lines checked, lines) is called every `every` lines, so a large file shows progress
    while it is checked."""
    try:
        lines = Path(path).read_bytes().decode("utf-8-sig").split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise RankingInputError(f"Cannot read {path}: {err}; nothing was imported.") from err
    for n, line in enumerate(lines, start=1):
        if on_progress is not None and n % every == 0:
            on_progress(n, len(lines))
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        yield n, row


def read_trl(path: Path, on_progress: Callable[[int, int], None] | None = None,
             every: int = 10000) -> list[Pair]:
    """Read preference JSONL (prompt, chosen, rejected), every line checked before any is used; raises
    RankingInputError naming the first bad line."""
    pairs = []
    for n, row in import_rows(path, on_progress, every):
        problem = _row_problem(row)
        if problem:
            raise RankingInputError(f"{path} line {n} {problem}; nothing was imported.")
        pairs.append(Pair(row["prompt"], row["chosen"], row["rejected"]))
    if not pairs:
        raise RankingInputError(f"{path} holds no pairs; nothing was imported.")
    return pairs
