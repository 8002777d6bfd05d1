"""Answers for arena matches: one sample per prompt from a saved policy version or from the base model.

A version vNNN is a standard adapter folder (adapters/policy/vNNN). It is loaded into the policy slot for the
sampling call and the slot is put back as it was afterwards (also on a stop or an error), so the session's
current policy never changes. `base` is the same model with adapters disabled, as the PPO reference.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Callable, Iterator

from ..config import GenerationConfig
from ..generation.sampling import sample
from ..modeling import checkpoints
from ..modeling.adapters import POLICY, LabModels

BASE = "base"


@contextlib.contextmanager
def policy_from(models: LabModels, folder: Path) -> Iterator[None]:
    """The policy slot holds the adapter saved in `folder` inside the block, and its old weights after."""
    saved = models.snapshot(POLICY)
    try:
        checkpoints.load_adapter(models, POLICY, folder)
        yield
    finally:
        models.restore(POLICY, saved)


def sample_version(models: LabModels, folder: Path | None, prompts: list[str], cfg: GenerationConfig,
                   seed: int, stop_event: threading.Event | None = None) -> list[dict]:
    """One answer per prompt from the version saved in `folder` (None: the base model), sampled with `cfg`'s
    temperature, top_p and length cap: [{"text", "tokens", "truncated"}] in the order of `prompts`."""
    args = (models, prompts, cfg.max_new_tokens, cfg.temperature, cfg.top_p)
    if folder is None:
        rollout = sample(*args, seed=seed, adapter=None, stop_event=stop_event)
    else:
        with policy_from(models, folder):
            rollout = sample(*args, seed=seed, adapter=POLICY, stop_event=stop_event)
    # An answer cut at max_new_tokens can end inside a multi-byte character: keep whole characters only.
    return [{"text": text.rstrip("\ufffd"), "tokens": int(n), "truncated": bool(cut)}
            for text, n, cut in zip(rollout.texts, rollout.response_lengths.tolist(), rollout.truncated.tolist())]


def judge_verdict(judge: Callable[[str, str], float], prompt: str, text_a: str, text_b: str) -> tuple[str, list]:
    """The judge's vote on one match ("A", "B" or "tie" on equal scores) and its two scores."""
    sa, sb = float(judge(prompt, text_a)), float(judge(prompt, text_b))
    return ("A" if sa > sb else "B" if sb > sa else "tie"), [sa, sb]
