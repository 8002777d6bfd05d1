"""Policy versions and their lineage: each saved version vNNN records the algorithm that made it (sft, ppo,
dpo), its parent version, the data it learned from and its config, in its folder's info.json.

Every training workflow starts from the session's current policy version (loaded when the session opens), so
PPO or DPO after SFT continues from the SFT version, and the new version names it as its parent.
"""
from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import asdict
from typing import Iterator

from ..data.meta import SessionMeta
from ..data.session import Session
from ..errors import LabError, Stopped
from ..modeling import checkpoints
from ..modeling.adapters import POLICY

VERSION_RE = re.compile(r"^v(\d{3})")


def next_version(session: Session) -> str:
    """One past the highest number in use, counting versions set aside as broken or left half-saved, so a
    new version never takes the name of an old one."""
    folder = session.adapter_dir("policy")
    entries = folder.iterdir() if folder.exists() else []
    numbers = [int(m.group(1)) for p in entries if (m := VERSION_RE.match(p.name))]
    return f"v{max(numbers, default=0) + 1:03d}"


def training_data(lab, start: SessionMeta, **counts) -> dict:
    """What a run learned from, kept with the version: the session's ranked rankings, the round they reach
    (the session's round when the run began), and the run's own counts (pairs, demonstrations)."""
    ranked = sum(r.get("verdict") == "ranked" for r in lab.rankings())
    return {"rankings": ranked, "round": start.round, **counts}


def save_version(lab, session: Session, start: SessionMeta, algorithm: str, data: dict, cfg, summary: dict,
                 extra_info: dict | None = None, **meta_changes) -> str:
    """Save the policy adapter in memory as the next version, child of `start.policy_version` (the session's
    state when the run began), and make it the session's current policy. Runs on the model thread."""
    version = next_version(session)
    info = {"algorithm": algorithm, "parent": start.policy_version, "round": start.round + 1,
            "created": round(time.time(), 3), "data": data, "config": asdict(cfg),
            "summary": {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool)) or v is None},
            **(extra_info or {})}
    checkpoints.save_adapter(lab.models, POLICY, session.adapter_dir("policy") / version, info=info)
    session.update_meta(policy_version=version, round=start.round + 1, **meta_changes)
    return version


def run_and_save(lab, session: Session, algorithm: str, rows: Iterator[dict], data: dict, cfg) -> Iterator[dict]:
    """Run a training generator (train_dpo, train_sft) on the model thread: log its rows, and at the end save
    the policy as the next version if it took a step. A failure puts the policy back as it was before the
    run, so memory matches what is on disk; a Stop keeps the whole steps taken (the generator checks it
    before each step) and saves them, as PPO does."""
    models, start = lab.models, session.read_meta()
    before = models.snapshot(POLICY)
    run, summary, job = int(time.time()), None, lab.jobs.current
    if job is not None:  # the reference pass and the first evaluation come before any step
        job.phase = {"text": "scoring the answers before the first step", "progress": 0.0}
    try:
        for row in rows:
            row = {**row, "time": time.time(), "round": start.round + 1, "run": run}
            if job is not None:
                job.phase = None
            if row.get("summary"):
                summary = row
                break
            session.log_metrics([{k: v for k, v in row.items() if k not in ("progress", "eta_s")}])
            yield row
        if summary["step"]:
            summary["policy_version"] = save_version(lab, session, start, algorithm, data, cfg, summary)
    except Stopped:  # before the first step (DPO's reference pass): nothing was trained, nothing is saved
        models.restore(POLICY, before)
        summary = {"phase": algorithm, "summary": True, "step": 0, "stopped": True, "round": start.round + 1}
    except BaseException:
        models.restore(POLICY, before)
        raise
    finally:
        models.use(POLICY)
    yield summary


def read_info(session: Session, version: str) -> dict:
    """A version's info.json, or {} where it is missing, unreadable or not an object (edited by hand)."""
    path = session.adapter_dir("policy") / version / "info.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def versions(lab) -> list[dict]:
    """The lineage, oldest first: "base" and every complete saved version with its algorithm, parent, round,
    data and config; "current" marks the session's policy."""
    session = lab.require_session()
    current = session.read_meta().policy_version
    folder = session.adapter_dir("policy")
    names = sorted(p.name for p in folder.glob("v[0-9][0-9][0-9]") if checkpoints.is_complete(p)) \
        if folder.exists() else []
    rows = [{"version": "base", "algorithm": None, "parent": None, "round": 0, "current": current == "base"}]
    for name in names:
        info = read_info(session, name)
        rows.append({"version": name, "algorithm": info.get("algorithm"), "parent": info.get("parent"),
                     "round": info.get("round"), "created": info.get("created"), "data": info.get("data"),
                     "config": info.get("config"), "summary": info.get("summary"), "current": current == name})
    return rows


def resolve(lab, version: str | None) -> str:
    """A version name the session has ("base" or a complete vNNN); None means the newest."""
    names = [row["version"] for row in versions(lab)]
    if version is None:
        return names[-1]
    if version not in names:
        raise LabError(f"This session has no policy version {version!r}; it has {', '.join(names)}. "
                       "List them with `python -m rlhf_lab versions --session NAME`.")
    return version


@contextlib.contextmanager
def policy_as(lab, version: str):
    """The policy adapter holds `version` inside the block and is put back after (on the model thread). The
    current version needs no loading; another is loaded from disk, "base" zeroes the adapter."""
    models, session = lab.models, lab.require_session()
    if version == session.read_meta().policy_version:
        yield
        return
    saved = models.snapshot(POLICY)
    try:
        if version == "base":
            models.reset_policy()
        else:
            folder = session.adapter_dir("policy") / version
            checkpoints.check_readable(folder)
            checkpoints.load_adapter(models, POLICY, folder)
        yield
    finally:
        models.restore(POLICY, saved)
