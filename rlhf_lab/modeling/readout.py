"""Where a scalar head reads a sequence: its last real token, the mean over the answer's tokens, or both.

The head is linear, so reading it on a pooled hidden state equals pooling its per-token scores; the scores
are pooled here, which keeps one head shape for every read-out.
"""
from __future__ import annotations

import torch

from ..config.reward import READOUTS


def last_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index (B,) of the last real token in each row (masks may be left- and right-padded)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * attention_mask.long()).argmax(dim=1)


def read_out(token_scores: torch.Tensor, attention_mask: torch.Tensor, answer_mask: torch.Tensor | None,
             kind: str) -> torch.Tensor:
    """(B,) from per-token scores (B, T).

    "last": the score on the last real token (the answer's EOS, or its last word when it was cut).
    "mean": the mean score over the answer's tokens. It reads every word, so a word the person ranked for
    counts wherever it stands, and a longer answer is not a higher one by itself.
    "last+mean": the average of the two.
    """
    if kind not in READOUTS:
        raise ValueError(f"unknown read-out {kind!r}; one of {', '.join(READOUTS)}")
    last = token_scores[torch.arange(token_scores.shape[0], device=token_scores.device), last_index(attention_mask)]
    if kind == "last":
        return last
    if answer_mask is None:
        raise ValueError(f"the {kind!r} read-out needs the answer's tokens (Trunk.answer_mask)")
    weights = (answer_mask * attention_mask).to(token_scores.dtype)
    mean = (token_scores * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    return mean if kind == "mean" else 0.5 * (last + mean)
