"""SFT settings, named as TRL names them. Defaults are chosen for SmolLM2-135M (LoRA r=16 on the top 8 layers)
on a 2-core CPU and a few dozen demonstrations; each says why."""
from __future__ import annotations

from dataclasses import dataclass

from .common import check_answer_training, check_range


@dataclass(frozen=True)
class SFTConfig:
    epochs: int = 3
    """Passes over the demonstrations (TRL's default). 16 demonstrations in batches of 4 are ~3 steps per
    epoch, so 3 epochs are ~10 optimizer steps; more overfit at the default rate (see learning_rate)."""
    learning_rate: float = 5e-4
    """Adam step for the policy LoRA. Measured on 16 demonstrations a concise judge picked from SmolLM2's own
    answers (12 trained, 4 held out, 3 epochs): 2e-4 raised the held-out log-likelihood by 0.2 nats per answer,
    5e-4 by 0.7 and still rising at the end, 1e-3 by 1.0 after 2 epochs and then less (overfitting); with 6
    epochs 5e-4 peaked after 3. Answers a person writes are further from the model than its own samples, so
    they have more to teach at the same rate."""
    batch_size: int = 4
    """Demonstrations per optimizer step; the loss is the mean over all their answer tokens (as TRL's)."""
    eval_fraction: float = 0.25
    """Share of prompts whose demonstrations are held out to measure their log-likelihood (4 of 16)."""
    max_prompt_length: int = 256
    """Prompt tokens kept (chat template included); longer prompts keep their end."""
    max_completion_length: int = 256
    """Answer tokens trained on; a person's answer longer than this is cut (and then gets no EOS)."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    seed: int = 0
    """Seed for the shuffle."""

    def __post_init__(self):
        check_range("batch size", self.batch_size, 1, 256)
        check_answer_training(self)
