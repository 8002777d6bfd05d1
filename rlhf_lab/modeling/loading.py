"""Load the base model and tokenizer: the embedded default, a Hugging Face id or a local folder (safetensors only)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError
from ..config import ModelConfig
from . import default_model
from .quantization import keep_4bit_weights_differentiable, quantization_config


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_model_path(name: str) -> str:
    """Map 'default' to the embedded model's cached folder; check local folders before loading."""
    if name in ("", "default", None):
        try:
            return str(default_model.ensure_default_model())
        except default_model.DefaultModelMissing as err:
            raise ModelLoadError(str(err)) from err
    path = Path(os.path.expanduser(name))
    looks_like_path = path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_like_path:
        if not path.is_dir():
            raise ModelLoadError(f"Model folder {name!r} does not exist. Give an existing folder, a Hugging Face "
                                 "model id, or leave --model out for the embedded default.")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{name!r} is not a model folder (no config.json). Point --model at a folder "
                                 "saved with save_pretrained(), or leave it out for the embedded default.")
        if not any(path.glob("*.safetensors")):
            raise ModelLoadError(f"{name!r} has no .safetensors weights; this lab loads safetensors only "
                                 "(pickled .bin weights can run code). Convert the model to safetensors.")
    return str(path) if looks_like_path else name


@dataclass
class LoadedBase:
    model: nn.Module
    tokenizer: object
    path: str


def load_base(cfg: ModelConfig, device: torch.device | None = None) -> LoadedBase:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or pick_device()
    path = resolve_model_path(cfg.model)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "4bit": torch.float32}[cfg.precision]
    if cfg.precision == "4bit" and device.type == "cuda":
        dtype = torch.bfloat16
    kwargs = dict(dtype=dtype, use_safetensors=True, trust_remote_code=cfg.trust_remote_code)
    quant = quantization_config(cfg.precision, device)
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": device.index or 0} if device.type == "cuda" else "cpu"
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelLoadError(
            f"Could not load model {cfg.model!r}: {str(err).splitlines()[0]} "
            "If it is a Hugging Face id, this machine may be offline: download it elsewhere, copy the folder "
            "here and pass its path, or leave --model out for the embedded default.") from err
    if quant is None:
        model.to(device)
    else:
        keep_4bit_weights_differentiable(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.config.use_cache = True
    return LoadedBase(model=model, tokenizer=tokenizer, path=path)


def num_layers(model: nn.Module) -> int:
    return int(model.config.get_text_config().num_hidden_layers)


def num_layers(model: nn.Module) -> int:
    return int(model.config.get_text_config().num_hidden_layers)
