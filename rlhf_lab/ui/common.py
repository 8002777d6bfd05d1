"""Helpers shared by the tabs: turning Lab errors into messages, progress bars, metric frames."""
from __future__ import annotations

import html

from ..errors import LabError
from ..metrics import to_frame


def person_errors():
    """Errors a person can fix (errors.py); anything else is a bug and keeps its traceback in the server log."""
    return LabError


def ok(text: str) -> str:
    return f"✅ {text}"


def err(text: str) -> str:
    return f"⚠️ {text}"


def progress_html(label: str, fraction: float | None, running: bool) -> str:
    label = html.escape(label)
    if fraction is None:
        return f"<div class='lab-progress'>{label}</div>"
    pct = max(0.0, min(1.0, fraction)) * 100
    state = "running" if running else "done"
    return (f"<div class='lab-progress {state}'><progress max='100' value='{pct:.0f}'></progress> "
            f"<span>{label} — {pct:.0f}%</span></div>")


def phase_frame(lab, phase: str):
    if lab.session is None:
        return to_frame([])
    rows, _ = lab.session.metrics()
    return to_frame(rows, phase)


def job_view(lab, names: tuple[str, ...]) -> tuple[str, bool]:
    """(progress html, running) for the current or last job if its name is one of `names`."""
    job = lab.jobs.current or lab.jobs.last
    if job is None or job.name not in names:
        return progress_html("Idle", None, False), False
    if job.running:
        last = job.last
        eta = f" · about {last['eta_s']:.0f}s left" if last.get("eta_s") is not None else ""
        phase = getattr(job, "phase", None)  # set by jobs that report progress inside a step (PPO)
        if phase:
            return progress_html(f"{job.name} {phase['text']}{eta}", phase["progress"], True), True
        if not job.rows:
            return progress_html(f"{job.name}: starting…", 0.0, True), True
        return progress_html(f"{job.name}: step {last.get('step', 0)}{eta}", last.get("progress", 0.0), True), True
    if job.error:
        return progress_html(f"{job.name} failed: {job.error}", None, False), False
    result = job.result or {}
    if result.get("message"):  # a job that ended on its own terms says why (PPO at its KL limit)
        return progress_html(f"{job.name} {result['message']}", None, False), False
    if result.get("stopped") == "time":  # only reward training has a time budget
        kept = ("the best epoch so far was kept" if result.get("trained")
                else "before its first evaluation, so nothing was saved")
        return progress_html(f"{job.name} stopped at its time budget; {kept} (see the warnings)", None, False), False
    if result.get("stopped") == "stop" or result.get("stopped") is True:
        return progress_html(f"{job.name} stopped; the last good state was kept", None, False), False
    return progress_html(f"{job.name} finished", 1.0, False), False


def job_marker(lab, names: tuple[str, ...]):
    """A value that changes whenever the job's rows, running state or the open session change: timers
    redraw only then."""
    job = lab.jobs.current or lab.jobs.last
    mine = job is not None and job.name in names
    phase = (getattr(job, "phase", None) or {}).get("text") if mine else None
    return len(job.rows) if mine else 0, bool(job and job.running), phase, lab.session.name if lab.session else None


def lab_marker(lab):
    """A value that changes when a job starts or ends or another session opens: the counters and the session
    summary (policy version, round, reward model) are redrawn then, without a page reload."""
    current, last = lab.jobs.current, lab.jobs.last
    return ((current.name, current.started) if current else None, (last.name, last.started) if last else None,
            lab.session.name if lab.session else None)
