"""Sessions on disk: sessions/<name>/ with session.json, rankings.jsonl, metrics.jsonl and adapters/."""
from __future__ import annotations

import json
import re
import threading
import time
import uuid
from pathlib import Path

from . import jsonl
from .meta import SessionMeta
from ..errors import SessionError
from .rankings import validate_ranking

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
VERDICTS = ("ranked", "all_bad", "skipped")


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SessionError(f"Session name {name!r} is not allowed: use 1-64 letters, digits, '-' or '_' "
                           "(no spaces, dots or slashes).")
    return name


def now() -> float:
    return round(time.time(), 3)


class Session:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.name = self.root.name
        self._lock = threading.Lock()

    # -- paths ----------------------------------------------------------------------------------------
    @property
    def meta_path(self) -> Path:
        return self.root / "session.json"

    @property
    def rankings_path(self) -> Path:
        return self.root / "rankings.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    def adapter_dir(self, kind: str) -> Path:
        return self.root / "adapters" / kind

    # -- lifecycle --------------------------------------------------------------------------------------
    @classmethod
    def create(cls, sessions_dir: Path, name: str, model: dict) -> "Session":
        validate_name(name)
        root = Path(sessions_dir) / name
        if root.exists():
            raise SessionError(f"Session {name!r} already exists; open it instead.")
        root.mkdir(parents=True)
        session = cls(root)
        session.write_meta(SessionMeta(name=name, created=now(), updated=now(), model=model))
        jsonl.fsync_dir(root.parent)
        return session

    @classmethod
    def open(cls, sessions_dir: Path, name: str) -> "Session":
        validate_name(name)
        root = Path(sessions_dir) / name
        if not (root / "session.json").is_file():
            raise SessionError(f"No session named {name!r} in {sessions_dir}. "
                               "List them with `python -m rlhf_lab sessions`.")
        return cls(root)

    @staticmethod
    def list(sessions_dir: Path) -> list[str]:
        d = Path(sessions_dir)
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if (p / "session.json").is_file() and NAME_RE.match(p.name))

    # -- metadata ---------------------------------------------------------------------------------------
    def read_meta(self) -> SessionMeta:
        try:
            data = json.loads(self.meta_path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return SessionMeta.from_dict(data)
        except (OSError, ValueError, TypeError) as err:
            raise SessionError(f"{self.meta_path} cannot be read ({err}); restore it or start a new session.") \
                from err

    def write_meta(self, meta: SessionMeta) -> None:
        jsonl.write_json_atomic(self.meta_path, meta.to_dict())

    def update_meta(self, **changes) -> SessionMeta:
        with self._lock:
            meta = self.read_meta().with_changes(**changes, updated=now())
            self.write_meta(meta)
            return meta

    # -- rankings ---------------------------------------------------------------------------------------
    def add_ranking(self, prompt: str, completions: list[str], ranking, verdict: str = "ranked",
                    annotator: str = "human", policy: str = "base", round_: int = 0, extra: dict | None = None) -> dict:
        """Validate and durably append one ranking event; returns the record once it is on disk."""
        if verdict not in VERDICTS:
            raise SessionError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
        if not completions:
            raise SessionError("There are no completions to rank: generate first.")
        groups = validate_ranking(ranking, len(completions)) if verdict == "ranked" else []
        rec = {"id": uuid.uuid4().hex[:12], "time": now(), "round": int(round_), "prompt": prompt,
               "completions": list(completions), "ranking": groups, "verdict": verdict,
               "annotator": annotator, "policy": policy, **(extra or {})}
        with self._lock:
            jsonl.append(self.rankings_path, [rec])
        return rec

    def retract(self, ranking_id: str) -> dict:
        """Undo: append a record that retracts an earlier ranking (never edits a line in place)."""
        active = {r["id"] for r in self.rankings()[0]}
        if ranking_id not in active:
            raise SessionError(f"No active ranking with id {ranking_id!r} to undo.")
        rec = {"id": uuid.uuid4().hex[:12], "time": now(), "retracts": ranking_id}
        with self._lock:
            jsonl.append(self.rankings_path, [rec])
        return rec

    def rankings(self) -> tuple[list[dict], list[str]]:
        """Active ranking records (retracted ones removed) and warnings about unreadable lines."""
        records, warnings = jsonl.read(self.rankings_path)
        retracted = {r["retracts"] for r in records if "retracts" in r}
        active = [r for r in records if "retracts" not in r and r.get("id") not in retracted
                  and isinstance(r.get("completions"), list) and r.get("verdict") in VERDICTS]
        return active, warnings

    # -- metrics -----------------------------------------------------------------------------------------
    def log_metrics(self, rows: list[dict]) -> None:
        if rows:
            with self._lock:
                jsonl.append(self.metrics_path, rows)

    def metrics(self) -> tuple[list[dict], list[str]]:
        return jsonl.read(self.metrics_path)
