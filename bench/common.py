"""Shared bits for the benchmark scripts: machine description, peak RSS, a session's lab and shared trunks."""
from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def machine() -> dict:
    import torch

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def open_session_lab(session: str):
    """A Lab with SESSIONS_DIR/NAME open, its own model loaded."""
    from rlhf_lab.lab import Lab

    path = Path(session)
    lab = Lab(path.parent)
    lab.open_session(path.name)
    return lab


def share_trunks(reward_module) -> None:
    """Make every reward-training run in this process reuse one TrunkCache per (first adapted layer, length):
    the frozen layers' output for the same answers does not change between runs."""
    caches, cls = {}, reward_module.TrunkCache
    reward_module.TrunkCache = lambda models, length: caches.setdefault((models.cut, length), cls(models, length))
