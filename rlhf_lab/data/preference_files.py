"""Preference pairs to and from JSONL files: TRL / OpenRLHF (plain or conversational) and HH-RLHF lines."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from ..errors import RankingInputError
from . import jsonl
from .files import share
from .pairs import Pair
from .preference_formats import parse_row


def write_jsonl_file(path: Path, rows: list[dict]) -> None:
    """Write rows as one JSONL file that appears whole or not at all (written beside it, then renamed), 0644."""
    path = Path(path)
    if not path.parent.exists():
        raise RankingInputError(f"Folder {path.parent} does not exist.")
    blob = jsonl.encode(rows)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        share(tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise jsonl.storage_error(path, err) from err


def export_trl(pairs: list[Pair], path: Path) -> int:
    """Write pairs as plain-string TRL / OpenRLHF preference JSONL (prompt, chosen, rejected); returns the
    count. Plain strings carry no chat template: the exports package writes the conversational form."""
    write_jsonl_file(path, [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs])
    return len(pairs)


def read_trl(path: Path, on_progress: Callable[[int, int], None] | None = None,
             every: int = 10000) -> list[Pair]:
    """Read preference JSONL in any format preference_formats knows (plain or conversational TRL / OpenRLHF,
    HH-RLHF), every line checked before any is used; raises
    RankingInputError naming the first bad line. Lines are split on "\n" only (never splitlines(), which
    also splits inside texts holding U+2028 or U+2029). on_progress(lines checked, lines) is called every
    `every` lines, so a large file shows progress while it is checked."""
    try:
        lines = Path(path).read_bytes().decode("utf-8-sig").split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise RankingInputError(f"Cannot read {path}: {err}; nothing was imported.") from err
    pairs = []
    for n, line in enumerate(lines, start=1):
        if on_progress is not None and n % every == 0:
            on_progress(n, len(lines))
        if not line.strip():
            continue
        try:
            parsed = parse_row(json.loads(line))
        except ValueError:
            parsed = "is not valid JSON"
        if isinstance(parsed, str):
            raise RankingInputError(f"{path} line {n} {parsed}; nothing was imported.")
        pairs.append(Pair(*parsed))
    if not pairs:
        raise RankingInputError(f"{path} holds no pairs; nothing was imported.")
    return pairs
