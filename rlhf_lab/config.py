"""Frozen configuration. Defaults are chosen for SmolLM2-135M on a 2-core CPU; each says why."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

MAX_K = 16
MAX_NEW_TOKENS_LIMIT = 1024


class ConfigError(ValueError):
    """A configuration value a person gave is out of range; the message says which and why."""


def check_range(name: str, value, low, high, why: str = "") -> None:
    """Raise ConfigError unless low <= value <= high."""
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}{why}")


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

    def __post_init__(self):
        if self.precision not in ("4bit", "bf16", "fp32"):
            raise ConfigError(f"precision must be 4bit, bf16 or fp32, not {self.precision!r}")
        check_range("LoRA rank", self.lora_r, 1, 256)


@dataclass(frozen=True)
class GenerationConfig:
    k: int = 4
    """Completions per prompt: four are quick to read and give six comparisons per ranking."""
    max_new_tokens: int = 64
    """Answer length cap: a small model rambles; 64 tokens fit a card and take ~1 s each here."""
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


@dataclass(frozen=True)
class RewardConfig:
    epochs: int = 4
    """Passes over the training pairs; early stopping on held-out accuracy usually ends sooner."""
    learning_rate: float = 1e-3
    """High for LoRA on purpose: a few hundred pairs, one minute of training."""
    lora_r: int = 16
    """LoRA rank of the reward adapter."""
    lora_layers: int = 8
    """LoRA on the top N layers only: backprop stops there, so a step costs about half (0 = all layers)."""
    batch_rankings: int = 4
    """Rankings per optimizer step; every completion is scored once and all its pairs share it."""
    eval_fraction: float = 0.2
    """Share of prompts held out for accuracy (split by prompt, never by pair)."""
    margin: float = 0.0
    """Optional margin in -log sigmoid(r_c - r_r - margin); 0 is plain Bradley-Terry."""
    center_coef: float = 0.01
    """Weight of mean(r)^2: keeps scores near 0 so PPO sees a stable scale."""
    patience: int = 2
    """Epochs without held-out improvement before stopping."""
    max_seconds: float = 55.0
    """Wall-clock budget: the lab promises a reward model within a minute."""
    max_length: int = 160
    """Tokens per scored sequence (prompt + answer); longer ones keep their end, where the reward is read."""
    continue_training: bool = False
    """Start from the saved reward adapter instead of a fresh one."""
    seed: int = 0
    """Seed for the shuffle and the head's initialisation."""

    def __post_init__(self):
        check_range("epochs", self.epochs, 1, 100)
        if not 0 < self.learning_rate < 1:
            raise ConfigError(f"learning rate must be in (0, 1), not {self.learning_rate}")
        check_range("LoRA rank", self.lora_r, 1, 256)
        if not 0 < self.eval_fraction < 1:
            raise ConfigError(f"eval_fraction must be in (0, 1), not {self.eval_fraction}")


@dataclass(frozen=True)
class PPOConfig:
    batch_size: int = 16
    """Rollouts per step (prompts sampled from the session's prompts and the built-in set). 16, not 8: a
    batch KL estimate from 8 answers is noisy (one step of a 20-step run read -0.11 nats while the policy
    had barely moved) and so are the advantages; a decode step costs little more for 16 rows than for 8."""
    max_new_tokens: int = 48
    """Response cap during PPO: shorter than ranking to keep a step near 10 s on CPU."""
    temperature: float = 1.0
    """Sample from the policy itself (PPO's log-probs assume the unmodified distribution)."""
    num_ppo_epochs: int = 2
    """Passes over each batch. 2 instead of TRL's 4: half the CPU time, nearly the same gain here."""
    num_mini_batches: int = 2
    """Minibatches per epoch (minibatch = batch_size / num_mini_batches)."""
    learning_rate: float = 3e-4
    """Adam step for the policy adapter and value head: 1e-4 barely moved the 135M policy in 10 steps,
    5e-4 overshot the KL target within 10; 3e-4 shows a clear change in ~15 steps (measured, docs/results.md)."""
    kl_coef: float = 0.05
    """Initial KL penalty coefficient beta."""
    kl_estimator: str = "k1"
    """'k1' (log-ratio, unbiased, can go negative per token) or 'k3' (always >= 0, lower variance)."""
    adaptive_kl: bool = True
    """Adjust kl_coef towards target_kl (Ziegler et al. 2019); False keeps it fixed."""
    target_kl: float = 2.0
    """Target sequence KL in nats for the adaptive controller: a visible change in style with fluent text.
    With 3.0 the KL of a 20-step run overshot to 6-8 nats in its last steps (docs/results.md)."""
    kl_horizon: int = 64
    """Adaptive controller horizon in rollouts: 64 lets beta move up to 5% per 16-rollout step, so it reacts
    within a 20-step run without collapsing while the KL is still small early on (16 with 8 rollouts let it
    fall 0.05 -> 0.014 before the policy moved). Ziegler's 10000 suits runs of thousands of steps."""
    cliprange: float = 0.2
    """PPO ratio clip epsilon."""
    cliprange_value: float = 0.2
    """Value clip around the old values."""
    vf_coef: float = 0.1
    """Value loss weight: the value head shares the policy's LoRA, so keep its pull small."""
    gamma: float = 1.0
    """Discount: episodes are one short answer, so no discounting."""
    lam: float = 0.95
    """GAE lambda: trades bias for variance in the advantages."""
    whiten_rewards: bool = False
    """Whiten the shaped rewards before GAE (TRL's default is off)."""
    missing_eos_penalty: float = 1.0
    """Subtracted from the score of answers cut at max_new_tokens without EOS."""
    ratio_threshold: float = 10.0
    """Skip a minibatch whose mean ratio exceeds this: a sign of a diverged update."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    seed: int = 0
    """Seed for prompt sampling and generation."""

    def __post_init__(self):
        check_range("batch size", self.batch_size, 1, 256)
        if self.num_mini_batches < 1 or self.batch_size % self.num_mini_batches:
            raise ConfigError(
                f"batch size {self.batch_size} must divide into {self.num_mini_batches} minibatches")
        check_range("max_new_tokens", self.max_new_tokens, 1, MAX_NEW_TOKENS_LIMIT)
        if self.kl_estimator not in ("k1", "k3"):
            raise ConfigError(f"kl_estimator must be k1 or k3, not {self.kl_estimator!r}")
        if self.kl_coef < 0 or self.target_kl <= 0:
            raise ConfigError("kl_coef must be >= 0 and target_kl > 0")
        if not 0 < self.learning_rate < 1:
            raise ConfigError(f"learning rate must be in (0, 1), not {self.learning_rate}")
        if not 0 < self.temperature <= 5:
            raise ConfigError(f"temperature must be above 0 and at most 5, not {self.temperature}")

    @property
    def mini_batch_size(self) -> int:
        return self.batch_size // self.num_mini_batches


def to_dict(cfg) -> dict:
    return asdict(cfg)


def from_dict(cls, data: dict | None):
    """Build a config from a (possibly older) dict, ignoring keys this version does not know."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in (data or {}).items() if k in known})


__all__ = ["ModelConfig", "GenerationConfig", "RewardConfig", "PPOConfig", "ConfigError",
           "to_dict", "from_dict", "replace", "field", "MAX_K"]
