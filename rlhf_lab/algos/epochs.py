"""The epoch loop DPO and SFT share: shuffled minibatches, one optimizer step each, held-out rows between epochs.

What differs between them is the loss of a minibatch and the held-out evaluation, passed in as functions.
"""
from __future__ import annotations

import math
import random
import threading
import time
from typing import Callable, Iterator

import torch

from ..errors import TrainingDiverged


def train_epochs(items: list, batch: int, epochs: int, seed: int, params: list[torch.nn.Parameter],
                 optimizer: torch.optim.Optimizer, max_grad_norm: float,
                 step_loss: Callable[[list], tuple[torch.Tensor, dict[str, float]]],
                 evaluate: Callable[[], dict[str, float]], base_row: dict, diverged: str,
                 stop_event: threading.Event | None = None) -> Iterator[dict]:
    """Yield a held-out row before the first step and after each epoch, a row per optimizer step, and last a
    summary row ("summary": True) with the held-out metrics at the start ("start/...") and at the last
    evaluation. `step_loss(minibatch)` returns the loss and the minibatch's metrics. A stop is checked before
    every step, so what stays in memory is always a whole number of steps; a stop mid-epoch does not wait
    for another evaluation. A loss that is not finite raises TrainingDiverged(`diverged`).
    """
    rng = random.Random(seed)
    started = time.monotonic()
    total_steps, step, stopped = epochs * math.ceil(len(items) / batch), 0, False
    evals: list[dict] = []

    def eval_row(epoch: int) -> dict:
        evals.append({**evaluate(), "eval_step": step})
        return {**base_row, "step": step, "epoch": epoch, **evals[-1], "progress": step / total_steps,
                "time/elapsed_s": time.monotonic() - started}

    yield eval_row(0)  # the baseline the plots start from
    for epoch in range(epochs):
        order = items[:]
        rng.shuffle(order)
        for start in range(0, len(order), batch):
            if stop_event is not None and stop_event.is_set():
                stopped = True
                break
            t0 = time.monotonic()
            loss, row = step_loss(order[start:start + batch])
            if not torch.isfinite(loss):
                raise TrainingDiverged(diverged)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            step += 1
            elapsed = time.monotonic() - started
            yield {**base_row, "step": step, "epoch": epoch, **row, "time/step_s": time.monotonic() - t0,
                   "progress": step / total_steps, "eta_s": elapsed / step * (total_steps - step)}
        if stopped:
            break
        yield eval_row(epoch + 1)
    yield {**base_row, "summary": True, "step": step, "stopped": stopped, **evals[-1],
           **{f"start/{k}": v for k, v in evals[0].items() if k != "eval_step"},
           "seconds": round(time.monotonic() - started, 2)}
