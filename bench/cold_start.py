"""App cold start: seconds from `python app.py` to the page answering, first run (GGUF conversion into an
empty cache) and cached. Median of --runs cached starts. Usage: python bench/cold_start.py [--runs 3]"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import machine

ROOT = Path(__file__).resolve().parent.parent


def start_once(cache: str, sessions: str) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RLHF_LAB_CACHE": cache, "HF_HUB_OFFLINE": "1"}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--sessions-dir", sessions],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("app exited")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - t
            except OSError:
                time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    cache, sessions = tempfile.mkdtemp(prefix="cache-"), tempfile.mkdtemp(prefix="sessions-")
    first = start_once(cache, sessions)
    cached = sorted(start_once(cache, sessions) for _ in range(args.runs))
    print(json.dumps({"first_run_s": round(first, 1), "cached_median_s": round(cached[len(cached) // 2], 1),
                      "cached_runs_s": [round(c, 1) for c in cached], "machine": machine()}))


if __name__ == "__main__":
    main()
