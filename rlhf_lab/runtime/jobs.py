"""One job at a time. A job runs an iterator of metric dicts in a background thread, so the UI can poll it,
reattach after a page reload, and stop it cooperatively."""
from __future__ import annotations

import contextlib
import threading
import time
import traceback
from typing import Callable, Iterator

from ..errors import LabBusy


class Job:
    def __init__(self, name: str):
        self.name = name
        self.rows: list[dict] = []
        self.started = time.time()
        self.finished: float | None = None
        self.error: str | None = None
        self.result: dict | None = None
        self.done = threading.Event()

    @property
    def running(self) -> bool:
        return not self.done.is_set()

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}


class JobRunner:
    def __init__(self):
        self._lock = threading.Lock()
        self.stop_event = threading.Event()
        self.current: Job | None = None
        self.last: Job | None = None

    def busy_message(self) -> str | None:
        job = self.current
        return None if job is None else f"'{job.name}' is running; wait for it to finish or press Stop."

    def acquire(self, name: str) -> Job:
        if not self._lock.acquire(blocking=False):
            raise LabBusy(self.busy_message() or "Another job is running; wait or press Stop.")
        self.stop_event.clear()
        self.current = Job(name)
        return self.current

    def release(self, job: Job) -> None:
        job.finished = time.time()
        job.done.set()
        self.last, self.current = job, None
        self._lock.release()

    @contextlib.contextmanager
    def inline(self, name: str):
        """Hold the job slot for a short piece of work in the caller's thread."""
        job = self.acquire(name)
        try:
            yield job
        finally:
            self.release(job)

    def run_inline(self, name: str, make: Callable[[], Iterator[dict]]) -> Iterator[dict]:
        """Run a job in the caller's thread (CLI, tests), yielding its rows."""
        job = self.acquire(name)
        try:
            for row in make():
                job.rows.append(row)
                yield row
        except Exception as err:
            job.error = str(err)
            raise
        finally:
            self.release(job)

    def run(self, name: str, make: Callable[[], Iterator[dict]], inline: bool):
        """run_inline (an iterator of rows in the caller's thread) or start (a background Job)."""
        return self.run_inline(name, make) if inline else self.start(name, make)

    def start(self, name: str, make: Callable[[], Iterator[dict]]) -> Job:
        """Run a job in a background thread; returns at once with the Job to poll."""
        job = self.acquire(name)

        def work():
            try:
                for row in make():
                    job.rows.append(row)
                    if row.get("summary"):
                        job.result = row
            except Exception as err:  # reported to the person through job.error
                job.error = f"{type(err).__name__}: {err}" if not str(err) else str(err)
                traceback.print_exc()
            finally:
                self.release(job)

        threading.Thread(target=work, name=f"job:{name}", daemon=True).start()
        return job

    def stop(self) -> bool:
        self.stop_event.set()
        return self.current is not None
