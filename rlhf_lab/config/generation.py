"""Sampling settings for the ranking tab and simulate."""
from __future__ import annotations

from dataclasses import dataclass

from .common import MAX_K, MAX_NEW_TOKENS_LIMIT, check_range
from ..errors import ConfigError


@dataclass(frozen=True)
class GenerationConfig:
    k: int = 4
    """Completions per prompt: four are quick to read and give six comparisons per ranking."""
    max_new_tokens: int = 128
    """Answer length cap. With the default system prompt, 66% of SmolLM2's answers to the lab's prompts ended
    within 64 tokens, 81% within 128 and 83% within 192 (16 prompts x 4 from every prompt set, AMD EPYC,
    docs/results.md): 128 keeps most answers whole; the rest are mostly repetition loops that no cap ends."""
    temperature: float = 0.8
    """Sampling temperature: enough variety to make the K answers worth ranking."""
    top_p: float = 0.95
    """Nucleus sampling: drops the long tail of junk tokens."""
    seed: int | None = None
    """Seed for reproducible samples; None draws a fresh one."""

    def __post_init__(self):
        check_range("K (completions per prompt)", self.k, 1, MAX_K)
        check_range("max_new_tokens", self.max_new_tokens, 1, MAX_NEW_TOKENS_LIMIT)
        if not 0 < self.temperature <= 5:
            raise ConfigError(
                f"temperature must be above 0 and at most 5, not {self.temperature}: "
                "K different answers need sampling")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], not {self.top_p}")
