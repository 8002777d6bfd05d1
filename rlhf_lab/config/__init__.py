"""Frozen configuration, one dataclass per workflow. Defaults are chosen for SmolLM2-135M on a 2-core CPU."""
from dataclasses import asdict, replace

from ..errors import ConfigError
from .common import MAX_K, MAX_NEW_TOKENS_LIMIT, check_range, from_dict
from .generation import GenerationConfig
from .model import ModelConfig
from .dpo import DPOConfig
from .ppo import PPOConfig
from .reward import RewardConfig
from .sft import SFTConfig


def to_dict(cfg) -> dict:
    return asdict(cfg)


__all__ = ["ModelConfig", "GenerationConfig", "RewardConfig", "PPOConfig", "ConfigError", "check_range",
           "DPOConfig", "SFTConfig", "from_dict", "to_dict", "replace", "MAX_K", "MAX_NEW_TOKENS_LIMIT"]
