"""Which model to load and how: precision, remote code, the policy LoRA's shape."""
from __future__ import annotations

from dataclasses import dataclass

from .common import check_range
from ..errors import ConfigError


DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Reply in one or two short sentences."


@dataclass(frozen=True)
class ModelConfig:
    model: str = "default"
    """'default' (the embedded SmolLM2-135M-Instruct), a Hugging Face model id, or a local folder."""
    precision: str = "4bit"
    """'4bit' (bitsandbytes nf4; smallest and, on CPU, faster than fp32), 'bf16' or 'fp32'."""
    trust_remote_code: bool = False
    """Run code shipped with a model. Off: a model folder should not execute code by default."""
    lora_r: int = 16
    """LoRA rank of the policy adapter: enough capacity for style changes, cheap on CPU."""
    lora_alpha: int = 32
    """LoRA scale numerator (alpha / r = 2, the common choice)."""
    lora_layers: int = 8
    """Policy LoRA on the top N decoder layers (0 = all): style lives in the top layers, and everything below
    is a frozen trunk that runs once per batch, so each PPO minibatch runs only these layers (a minibatch of
    4 x 87 tokens took ~3 s with LoRA on all 30 layers, ~1.2 s on the top 8 before the trunk split)."""

    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
    """System message in every chat prompt (sampling, reward scoring, PPO alike); None keeps the model's own.
    SmolLM2's own default lets answers run to 200-400 tokens, so at an affordable length cap most were cut
    mid-sentence and rankings taught "finished beats cut" instead of the person's taste. Asking for "two or
    three sentences" still left a third of answers running past 192 tokens (often in a repetition loop);
    "one or two short sentences" finished 81% within 128 tokens across every prompt set (docs/results.md)."""
    fast_decode: bool = True
    """On CPU, sample from a decode-only fp32 copy of the frozen layers (int8 vocabulary projection) when it
    reproduces the model: 2-3x faster sampling for ~0.5 GB more memory. Training always uses `precision`."""

    def __post_init__(self):
        if self.precision not in ("4bit", "bf16", "fp32"):
            raise ConfigError(f"precision must be 4bit, bf16 or fp32, not {self.precision!r}")
        check_range("LoRA rank", self.lora_r, 1, 256)
