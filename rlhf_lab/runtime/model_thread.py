"""All model work runs on one dedicated thread.

Measured on the 2-core CPU: once torch ops run on two different threads, each thread's OpenMP team
competes with the other and generation slows down ~1.7x for the rest of the process. Gradio calls back
from a pool of threads, so every forward, backward and load is funnelled through this single thread.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rlhf-model")
_model_thread: list[threading.Thread] = []


def _mark():
    _model_thread[:] = [threading.current_thread()]


_executor.submit(_mark).result()


def on_model_thread() -> bool:
    return bool(_model_thread) and threading.current_thread() is _model_thread[0]


def call(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run fn on the model thread and return its result (directly if already there)."""
    if on_model_thread():
        return fn(*args, **kwargs)
    return _executor.submit(fn, *args, **kwargs).result()


def submit(fn: Callable[..., T], *args, **kwargs):
    """Start fn on the model thread; returns a Future."""
    return _executor.submit(fn, *args, **kwargs)


_DONE = object()


def iterate(make: Callable[[], Iterator[T]]) -> Iterator[T]:
    """Run a generator on the model thread, yielding its items to the caller as they come."""
    if on_model_thread():
        yield from make()
        return
    items: queue.Queue = queue.Queue()

    def pump():
        try:
            for item in make():
                items.put(("item", item))
        except BaseException as err:  # re-raised in the caller's thread
            items.put(("error", err))
        finally:
            items.put(("done", _DONE))

    _executor.submit(pump)
    while True:
        kind, value = items.get()
        if kind == "item":
            yield value
        elif kind == "error":
            raise value
        else:
            return
