"""Reward-model training settings. Defaults are chosen for SmolLM2-135M on a 2-core CPU; each says why."""
from __future__ import annotations

from dataclasses import dataclass

from .common import check_range
from ..errors import ConfigError


READOUTS = ("last+mean", "mean", "last")  # where the reward head reads an answer (modeling/readout.py)


@dataclass(frozen=True)
class RewardConfig:
    epochs: int = 8
    """Most passes over the training pairs; early stopping on the held-out loss usually ends sooner. With 4,
    held-out accuracy on a content judge was still rising (0.64 -> 0.79) when training ended."""
    learning_rate: float = 1e-3
    """High for LoRA on purpose: a few hundred pairs, one minute of training."""
    lora_r: int = 16
    """LoRA rank of the reward adapter."""
    lora_layers: int = 8
    """LoRA on the top N layers only: backprop stops there, so a step costs about half (0 = all layers)."""
    batch_rankings: int = 4
    """Rankings per optimizer step; every completion is scored once and all its pairs share it."""
    eval_fraction: float = 0.25
    """Share of prompts held out for accuracy (split by prompt, never by pair). A quarter, not a fifth: 32
    ranked prompts then hold out 8 (up to 48 pairs), enough for an accuracy interval narrower than +-0.15."""
    margin: float = 0.0
    """Optional margin in -log sigmoid(r_c - r_r - margin); 0 is plain Bradley-Terry."""
    center_coef: float = 0.01
    """Weight of mean(r)^2: keeps scores near 0 so PPO sees a stable scale."""
    patience: int = 2
    """Epochs without a lower held-out loss before stopping (the loss, not the accuracy: on a few dozen
    held-out pairs accuracy moves in coarse steps and plateaus while the loss still improves)."""
    max_seconds: float | None = None
    """Optional wall-clock budget. None: stop by epochs and early stopping only, so a slow CPU trains the
    same model as a fast one (a 55 s budget stopped after 7 steps on a slow CPU, at chance accuracy)."""
    readout: str = "last+mean"
    """Where the reward head reads the answer: "last" (its end token only), "mean" (the mean over its tokens)
    or "last+mean" (the average of the two). The end token alone learned length, not what the person ranked
    for: on mentions:you rankings 0.60 held-out, 2 of 9 where length points the wrong way; last+mean 0.80 and
    6 of 9, and 0.875 on enthusiastic (end token 0.81; docs/results.md, seeded start). Only "last" can be exported as a
    transformers *ForSequenceClassification reward model, which reads one token. Continuing a saved reward
    model keeps its own read-out."""
    max_length: int = 160
    """Tokens per scored sequence (prompt + answer); longer ones keep their end, where the reward is read."""
    continue_training: bool = False
    """Start from the saved reward adapter instead of a fresh one."""
    seed: int = 0
    """Seed for the fresh adapter's LoRA matrices (the head starts at zero) and the order of the pairs."""

    def __post_init__(self):
        check_range("epochs", self.epochs, 1, 100)
        if not 0 < self.learning_rate < 1:
            raise ConfigError(f"learning rate must be in (0, 1), not {self.learning_rate}")
        check_range("LoRA rank", self.lora_r, 1, 256)
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ConfigError(f"max_seconds must be positive (or None for no budget), not {self.max_seconds}")
        check_range("patience", self.patience, 1, 100)
        if self.readout not in READOUTS:
            raise ConfigError(f"readout must be one of {', '.join(READOUTS)}, not {self.readout!r}")
        if not 0 < self.eval_fraction < 1:
            raise ConfigError(f"eval_fraction must be in (0, 1), not {self.eval_fraction}")
