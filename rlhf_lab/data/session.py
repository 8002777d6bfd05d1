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
from .records import VERDICTS, ranking_record_problem, record_problem

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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
        self.notices: list[str] = []  # what opening it repaired; shown with the rankings' warnings

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
    def create(cls, sessions_dir: Path, name: str, model: dict, exist_ok: bool = False) -> "Session":
        """Create the session; with exist_ok, open it if it exists, also when another process creates it at
        the same moment (session.json is written only where none exists yet, so exactly one writer wins)."""
        validate_name(name)
        root = Path(sessions_dir) / name
        root.mkdir(parents=True, exist_ok=True)
        session = cls(root)
        if session.meta_path.is_file() or not session._write_first_meta(model):
            if not exist_ok:
                raise SessionError(f"Session {name!r} already exists; open it instead.")
        jsonl.fsync_dir(root.parent)
        return session

    @classmethod
    def open(cls, sessions_dir: Path, name: str) -> "Session":
        validate_name(name)
        root = Path(sessions_dir) / name
        session = cls(root)
        if not session.meta_path.is_file():
            if not session.rankings_path.is_file():
                raise SessionError(f"No session named {name!r} in {sessions_dir}. "
                                   "List them with `python -m rlhf_lab sessions`.")
            session._write_first_meta({})
        return session

    @staticmethod
    def list(sessions_dir: Path) -> list[str]:
        """Sessions with metadata, and those whose session.json was lost but whose rankings remain."""
        d = Path(sessions_dir)
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if NAME_RE.match(p.name)
                      and ((p / "session.json").is_file() or (p / "rankings.jsonl").is_file()))

    def _write_first_meta(self, model: dict) -> bool:
        """Write session.json where there is none: fresh, or rebuilt from the rankings if some survive."""
        meta = SessionMeta(name=self.name, created=now(), updated=now(), model=model)
        records, _ = jsonl.read(self.rankings_path, record_problem)
        if records:
            meta = self._rebuilt_meta(meta, records)
        written = jsonl.write_json_atomic(self.meta_path, meta.to_dict(), exclusive=True)
        if written and records:
            self.notices.append(
                f"session.json of session {self.name!r} was missing; it was rebuilt from the {len(records)} "
                f"records in rankings.jsonl (round {meta.round}, policy {meta.policy_version}"
                + (", model settings as given now)." if model else ", the default model).")
                + " Check it, or restore the original from a backup.")
        return written

    def _rebuilt_meta(self, meta: SessionMeta, records: list[dict]) -> SessionMeta:
        ranked = [r for r in records if "retracts" not in r]
        policy = next((r.get("policy") for r in reversed(ranked) if r.get("policy")), "base")
        if policy != "base" and not (self.adapter_dir("policy") / policy).is_dir():
            policy = "base"  # the version that produced the last ranking is gone: start from the base
        times = [r["time"] for r in records if isinstance(r.get("time"), (int, float))]
        return meta.with_changes(created=min(times, default=meta.created), policy_version=policy,
                                 round=max((r.get("round", 0) for r in ranked), default=0),
                                 extra={"rebuilt_from_records": now()})

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
    def make_ranking(self, prompt: str, completions: list[str], ranking, verdict: str = "ranked",
                     annotator: str = "human", policy: str = "base", round_: int = 0,
                     extra: dict | None = None) -> dict:
        """A new ranking record, checked against the schema every reader applies; nothing is written."""
        if verdict not in VERDICTS:
            raise SessionError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
        if not completions:
            raise SessionError("There are no completions to rank: generate first.")
        groups = validate_ranking(ranking, len(completions)) if verdict == "ranked" else []
        rec = {"id": uuid.uuid4().hex[:12], "time": now(), "round": int(round_), "prompt": prompt,
               "completions": list(completions), "ranking": groups, "verdict": verdict,
               "annotator": annotator, "policy": policy, **(extra or {})}
        problem = ranking_record_problem(rec)
        if problem:
            raise SessionError(f"This ranking cannot be saved: {problem}.")
        return rec

    def append_rankings(self, records: list[dict]) -> None:
        """Durably append records made by make_ranking, all in one write: all are saved or none."""
        with self._lock:
            jsonl.append(self.rankings_path, records)

    def add_ranking(self, prompt: str, completions: list[str], ranking, verdict: str = "ranked",
                    annotator: str = "human", policy: str = "base", round_: int = 0, extra: dict | None = None) -> dict:
        """Validate and durably append one ranking event; returns the record once it is on disk."""
        rec = self.make_ranking(prompt, completions, ranking, verdict, annotator, policy, round_, extra)
        self.append_rankings([rec])
        return rec

    def retract(self, ranking_id: str) -> dict:
        """Undo: append a record that retracts an earlier ranking (never edits a line in place)."""
        active = {r["id"] for r in self.rankings()[0]}
        if ranking_id not in active:
            raise SessionError(f"No active ranking with id {ranking_id!r} to undo.")
        rec = {"id": uuid.uuid4().hex[:12], "time": now(), "retracts": ranking_id}
        self.append_rankings([rec])
        return rec

    def rankings(self) -> tuple[list[dict], list[str]]:
        """Active ranking records (retracted ones removed) and warnings about lines that were skipped."""
        records, warnings = jsonl.read(self.rankings_path, record_problem)
        retracted = {r["retracts"] for r in records if "retracts" in r}
        active = [r for r in records if "retracts" not in r and r["id"] not in retracted]
        return active, self.notices + warnings

    # -- metrics -----------------------------------------------------------------------------------------
    def log_metrics(self, rows: list[dict]) -> None:
        if rows:
            with self._lock:
                jsonl.append(self.metrics_path, rows)

    def metrics(self) -> tuple[list[dict], list[str]]:
        return jsonl.read(self.metrics_path)
