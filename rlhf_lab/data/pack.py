"""Share a session as one zip: its records, metrics, session.json and saved adapters, with a manifest of
sha256 sums that unpacking checks before anything becomes a session.

Unpacking refuses, with nothing written: entries outside the session (absolute paths, '..', links), files
not in the manifest or not matching it, and a session name that already exists. It extracts into a hidden
folder beside the sessions and renames it into place only when every file checked out.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import SessionError
from .jsonl import fsync_dir
from .session import validate_name

MANIFEST = "manifest.json"
FORMAT = "rlhf_lab-session"
RECORDS = ("session.json", "rankings.jsonl", "votes.jsonl", "demonstrations.jsonl", "metrics.jsonl",
           "evaluations.jsonl")
LEFTOVER = (".tmp", ".old")  # a save cut between its renames; recovered on open, never shared


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def session_files(root: Path) -> list[str]:
    """The files worth sharing, as POSIX paths relative to the session folder."""
    found = [name for name in RECORDS if (root / name).is_file()]
    adapters = root / "adapters"
    if adapters.is_dir():
        for path in sorted(adapters.rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and not path.is_symlink() and not any(
                    p.endswith(LEFTOVER) or ".broken-" in p for p in rel.parts):
                found.append(rel.as_posix())
    return found


def pack(root: Path, out: Path) -> dict:
    """Write the session at `root` to the zip `out` (whole or not at all); returns the manifest."""
    root, out = Path(root), Path(out)
    if not (root / "session.json").is_file():
        raise SessionError(f"{root} has no session.json: nothing to pack.")
    files = session_files(root)
    manifest = {"format": FORMAT, "version": 1, "session": root.name,
                "files": {name: {"sha256": sha256(root / name), "bytes": (root / name).stat().st_size}
                          for name in files}}
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2))
            for name in files:
                zf.write(root / name, name)
        os.replace(tmp, out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise SessionError(f"Could not write {out} ({err.strerror or err}); nothing was written.") from err
    return manifest


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return (bool(name) and "\\" not in name and not path.is_absolute() and ".." not in path.parts
            and (name in RECORDS or (path.parts[0] == "adapters" and len(path.parts) > 1)))


def read_manifest(zf: zipfile.ZipFile, source: Path) -> dict:
    """The manifest, after checking that it and the zip list the same safe, plain files."""
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except (KeyError, ValueError):
        manifest = None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (not isinstance(files, dict) or manifest.get("format") != FORMAT
            or not all(isinstance(v, dict) for v in files.values())):
        raise SessionError(f"{source} is not a session packed by rlhf_lab (no valid {MANIFEST}).")
    entries = {info.filename: info for info in zf.infolist() if info.filename != MANIFEST}
    for name, info in entries.items():
        if not _safe_name(name) or stat.S_ISLNK(info.external_attr >> 16) or info.is_dir():
            raise SessionError(f"{source} holds {name!r}, which is outside a session's files (an absolute path, "
                               "'..', a link or an unknown file): refused, nothing was written.")
    if set(entries) != set(files) or "session.json" not in files:
        missing, extra = sorted(set(files) - set(entries)), sorted(set(entries) - set(files))
        raise SessionError(f"{source} does not match its manifest (missing {missing}, not listed {extra}): "
                           "refused, nothing was written.")
    return manifest


def unpack(source: Path, sessions_dir: Path, name: str | None = None) -> dict:
    """Make the packed session a new session named `name` (default: its own name); returns
    {"session", "files"}. Refuses, writing nothing, if that session exists or anything fails a check."""
    source, sessions_dir = Path(source), Path(sessions_dir)
    try:
        zf = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as err:
        raise SessionError(f"Cannot read {source} as a zip file ({err}).") from err
    with zf:
        manifest = read_manifest(zf, source)
        name = validate_name(name or manifest.get("session", ""))
        target = sessions_dir / name
        if target.exists():
            raise SessionError(f"Session {name!r} already exists in {sessions_dir}: nothing was written. Unpack "
                               "it under another name (--as NAME) or remove that session first.")
        sessions_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=sessions_dir))  # same disk: the rename is atomic
        try:
            for entry, expected in manifest["files"].items():
                _extract(zf, entry, staging / entry, expected, source)
            _rename_meta(staging / "session.json", name)
            if target.exists():
                raise SessionError(f"Session {name!r} appeared while unpacking: nothing was written.")
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    fsync_dir(sessions_dir)
    return {"session": name, "files": len(manifest["files"])}


def _extract(zf: zipfile.ZipFile, entry: str, dest: Path, expected: dict, source: Path) -> None:
    """One file, hashed while it is written; a size or sum that differs from the manifest is refused."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with zf.open(entry) as src, open(dest, "wb") as out:
        for block in iter(lambda: src.read(1 << 20), b""):
            size += len(block)
            if size > int(expected.get("bytes", -1)):
                break  # more bytes than the manifest says: stop reading (a zip bomb would not end)
            digest.update(block)
            out.write(block)
    if size != expected.get("bytes") or digest.hexdigest() != expected.get("sha256"):
        raise SessionError(f"{entry} in {source} does not match its sha256 in the manifest (damaged or altered): "
                           "refused, nothing was written.")


def _rename_meta(path: Path, name: str) -> None:
    """session.json names its folder: under --as NAME it says NAME."""
    meta = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(meta, dict) and meta.get("name") != name:
        meta["name"] = name
        path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
