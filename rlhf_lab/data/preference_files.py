"""Preference pairs to and from JSONL files: TRL / OpenRLHF (plain or conversational) and HH-RLHF lines."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

from ..errors import RankingInputError
from . import jsonl
from .pairs import Pair
from .preference_formats import parse_row


def write_jsonl_file(path: Path, rows: list[dict]) -> None:
    """Write rows as one JSONL file that appears whole or not at all (written beside it, then renamed), 0644."""
    path = Path(path)
    if not path.parent.exists():
        raise RankingInputError(f"Folder {path.parent} does not exist.")
    jsonl.write_lines_atomic(path, rows)


def export_trl(pairs: list[Pair], path: Path) -> int:
    """Write pairs as plain-string TRL / OpenRLHF preference JSONL (prompt, chosen, rejected); returns the
    count. Plain strings carry no chat template: the exports package writes the conversational form."""
    write_jsonl_file(path, [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs])
    return len(pairs)


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
    """Read preference JSONL in any format preference_formats knows (plain or conversational TRL / OpenRLHF,
    HH-RLHF), every line checked before any is used; raises RankingInputError naming the first bad line."""
    pairs = []
    for n, row in import_rows(path, on_progress, every):
        parsed = "is not valid JSON" if row is None else parse_row(row)
        if isinstance(parsed, str):
            raise RankingInputError(f"{path} line {n} {parsed}; nothing was imported.")
        pairs.append(Pair(*parsed))
    if not pairs:
        raise RankingInputError(f"{path} holds no pairs; nothing was imported.")
    return pairs
