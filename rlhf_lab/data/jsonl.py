"""Append-only JSON Lines: every append is flushed and fsynced before it returns."""
from __future__ import annotations

import json
import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append(path: Path, records: list[dict]) -> None:
    """Append records durably. A torn last line (a crash mid-write) is closed off first, so the new
    record starts on its own line; the fragment stays and readers report it."""
    new = not path.exists()
    with open(path, "ab+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        for rec in records:
            f.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    if new:
        fsync_dir(path.parent)


def read(path: Path) -> tuple[list[dict], list[str]]:
    """All parseable records and a list of human-readable warnings about lines that were skipped."""
    if not path.exists():
        return [], []
    records, warnings = [], []
    data = path.read_bytes()
    lines = data.split(b"\n")
    ends_clean = data.endswith(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        is_last = number == len(lines) or (number == len(lines) - 1 and ends_clean)
        try:
            rec = json.loads(raw.decode("utf-8"))
            if not isinstance(rec, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            if is_last and not ends_clean:
                warnings.append(f"{path.name}: the last line was incomplete (the app stopped mid-write) "
                                "and was ignored; every earlier line is intact.")
            else:
                warnings.append(f"{path.name}: line {number} is not valid JSON and was ignored.")
            continue
        records.append(rec)
    return records, warnings


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
