"""Writing a bundle: every file goes into a staging folder beside the target, which is renamed into place only
when all are written, so a failed export leaves nothing behind and an existing folder is never half-replaced."""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from ..data import jsonl
from ..data.files import share
from ..errors import ExportError


def check_target(out: Path) -> Path:
    """The bundle folder to write: new, or an empty folder; ExportError otherwise (before any work)."""
    out = Path(out).expanduser().resolve()
    if out.suffix in (".jsonl", ".json", ".parquet"):
        raise ExportError(f"{out} looks like a file name, but the bundle is a folder: give a folder, or use "
                          "--format trl for one preference file. Nothing was written.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} already exists and is not an empty folder: give a new folder. Nothing was written.")
    if not out.parent.is_dir():
        raise ExportError(f"Folder {out.parent} does not exist: create it first. Nothing was written.")
    return out


@contextlib.contextmanager
def staged_folder(out: Path):
    """Yield a fresh staging folder; on success it becomes `out` (files 0644, folders 0755 under umask 022)."""
    out = check_target(out)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        share(tmp)
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        if out.exists():
            out.rmdir()  # checked empty above
        os.replace(tmp, out)
        jsonl.fsync_dir(out.parent)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise jsonl.storage_error(out, err) from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_jsonl(path: Path, rows: list[dict]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jsonl.encode(rows))
    return len(rows)
