"""Share a session: pack the open one into a zip, unpack a zip as a new session (data/pack.py checks it)."""
from __future__ import annotations

from pathlib import Path

from ..data import pack as packing


def pack(lab, out: Path | str) -> dict:
    """Zip the open session (not while a job may be writing to it)."""
    session = lab.require_session()
    lab.require_idle()
    manifest = packing.pack(session.root, Path(out))
    return {"session": session.name, "out": str(out), "files": len(manifest["files"]),
            "bytes": Path(out).stat().st_size}


def unpack(lab, source: Path | str, name: str | None = None) -> dict:
    """A packed session as a new session in this lab's folder; never over an existing one."""
    return {**packing.unpack(Path(source), lab.sessions_dir, name), "sessions_dir": str(lab.sessions_dir)}
