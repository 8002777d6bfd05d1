"""Append-only JSON Lines: every append is one write, flushed and fsynced before it returns.

A batch of records is in the file entirely or not at all: it is encoded first (text that cannot be stored
as UTF-8 is refused before the file is touched), written in one go under an exclusive lock, and on any
failure (a full disk, Ctrl-C) the file is cut back to its size before the write.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import uuid
from pathlib import Path
from typing import Callable

from ..errors import DiskFull, SessionError, StorageError

FULL = (errno.ENOSPC, errno.EDQUOT)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def storage_error(path: Path, err: OSError) -> StorageError:
    """The person-facing error for a failed write: a full disk says so."""
    if err.errno in FULL:
        return DiskFull(f"The disk is full: nothing was saved to {path}. Free some space and try again.")
    return StorageError(f"Could not write {path} ({err.strerror or err}); nothing was saved.")


def encode(records: list[dict]) -> bytes:
    """All records as JSON lines, or SessionError naming the first text UTF-8 cannot hold."""
    out = []
    for n, rec in enumerate(records, start=1):
        try:
            out.append((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
        except UnicodeEncodeError as err:
            raise SessionError(f"Record {n} holds a character UTF-8 cannot store ({err.object[err.start:err.end]!r}, "
                               "a lone surrogate); remove it. Nothing was saved.") from err
    return b"".join(out)


def append(path: Path, records: list[dict]) -> None:
    """Append records durably and all-or-nothing. A torn last line (a crash mid-write) is closed off first,
    so the new records start on their own line; the fragment stays and readers report it."""
    blob = encode(records)
    if not blob:
        return
    new = not path.exists()
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as err:
        raise storage_error(path, err) from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # other processes appending to the same session wait their turn
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            blob = b"\n" + blob
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException as err:  # a full disk or Ctrl-C mid-batch: cut back so no part of it stays
            os.ftruncate(fd, size)
            os.fsync(fd)
            if isinstance(err, OSError):
                raise storage_error(path, err) from err
            raise
    finally:
        os.close(fd)
    if new:
        fsync_dir(path.parent)


def read(path: Path, check: Callable[[dict], str | None] | None = None) -> tuple[list[dict], list[str]]:
    """All well-formed records and human-readable warnings about the lines skipped.

    Lines are split on b"\\n" only: str.splitlines() would also split inside texts holding U+2028 or U+2029.
    `check(record)` returns why a parsed record has the wrong shape, or None when it is fine.
    """
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
        problem = check(rec) if check else None
        if problem:
            warnings.append(f"{path.name}: line {number} was ignored: {problem}.")
            continue
        records.append(rec)
    return records, warnings


def write_json_atomic(path: Path, obj, exclusive: bool = False) -> bool:
    """Write a JSON file whole or not at all (a private temporary file renamed into place).

    exclusive: only if `path` does not exist yet (a hard link fails when it does), so of several processes
    creating the same file at once exactly one writes it. Returns False when it already existed.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
    except OSError as err:
        raise storage_error(path, err) from err
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def write_lines_atomic(path: Path, records: list[dict]) -> None:
    """Write records as a whole JSONL file (an export): encoded first, written beside it, fsynced, made
    readable by others (0644 under the usual umask: exports are handed on), renamed."""
    from .files import share

    blob = encode(records)
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
        raise storage_error(path, err) from err
