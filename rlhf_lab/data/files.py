"""File modes for what the lab saves: readable by others as the umask allows (0644 / 0755 under umask 022).

safetensors 0.8 writes its files 0600 and tempfile.mkdtemp makes folders 0700, whatever the umask: a
model or adapter saved that way cannot be read by a training job running as another user, or from a
shared folder. Every save calls `share` on what it wrote before moving it into place.
"""
from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process umask, read without changing it (os.umask can only be read by setting it, which would race
    with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def share(path: Path | str) -> None:
    """chmod a file to 0666 & ~umask, or a folder and everything in it to 0777 / 0666 & ~umask."""
    path = Path(path)
    mask = current_umask()
    targets = [path] + (sorted(path.rglob("*")) if path.is_dir() else [])
    for target in targets:
        if target.is_symlink():
            continue
        os.chmod(target, (0o777 if target.is_dir() else 0o666) & ~mask)
