"""Preference pairs to and from JSONL files in the TRL / OpenRLHF column layout (prompt, chosen, rejected)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import RankingInputError
from .pairs import Pair


def export_trl(pairs: list[Pair], path: Path) -> int:
    """Write pairs as TRL / OpenRLHF preference JSONL (prompt, chosen, rejected); returns the count."""
    path = Path(path)
    if not path.parent.exists():
        raise RankingInputError(f"Folder {path.parent} does not exist.")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected},
                               ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return len(pairs)


def read_trl(path: Path) -> list[Pair]:
    """Read preference JSONL (prompt, chosen, rejected); raises RankingInputError naming the bad line."""
    pairs = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise RankingInputError(f"Cannot read {path}: {err}") from err
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            fields = [row["prompt"], row["chosen"], row["rejected"]]
        except (ValueError, KeyError, TypeError) as err:
            raise RankingInputError(f"{path} line {n} is not a JSON object with prompt, chosen and rejected "
                                    "strings; nothing was imported.") from err
        if not all(isinstance(x, str) for x in fields):
            raise RankingInputError(f"{path} line {n}: prompt, chosen and rejected must be strings; "
                                    "nothing was imported.")
        pairs.append(Pair(*fields))
    if not pairs:
        raise RankingInputError(f"{path} holds no pairs; nothing was imported.")
    return pairs
