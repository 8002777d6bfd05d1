"""One base model in memory, with two named LoRA adapters ("policy", "reward") and two scalar heads.

The reference model is the same base with adapters disabled, so there is never a second copy of the base
weights. Everything that runs a forward pass goes through `LabModels.hidden()` so position ids and masks
are built the same way for generation, scoring and training.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import ModelConfig
from . import default_model

POLICY = "policy"
REWARD = "reward"


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says what to do."""


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


def lora_targets(model: nn.Module):
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    attention = ["q_proj", "k_proj", "v_proj", "o_proj"]
    if all(t in names for t in attention):
        return attention  # attention-only LoRA: ~40% cheaper than all-linear on CPU, enough for style
    return "all-linear"


def _quantization(precision: str, device: torch.device):
    if precision != "4bit":
        return None
    from transformers import BitsAndBytesConfig

    # fp32 compute on CPU: bf16 compute was slower for the backward pass on the CPUs we measured.
    compute = torch.bfloat16 if device.type == "cuda" else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)


def keep_4bit_weights_differentiable(model: nn.Module) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for its CPU inference kernel.

    On CPUs with AVX512-BF16, a Linear4bit layer that runs once in eval mode without grad (generate() does)
    converts its weight for good to a packed layout whose kernel has no backward. Every later forward, training
    included, then goes through it and gradients stop flowing through the base layers: measured here, the
    input-gradient norm fell from ~1250 to 2.7 after one generate. The plain dequantize-and-matmul path is
    differentiable (and faster for our batched no-grad passes; generation is ~25% slower). Returns the number
    of layers switched.
    """
    import bitsandbytes as bnb

    switched = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit) and getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            switched += 1
    return switched


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
    quant = _quantization(cfg.precision, device)
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


def lora_config(model: nn.Module, r: int, alpha: int | None = None, top_layers: int = 0):
    """LoRA on the attention projections; with top_layers, only on the last that many decoder layers."""
    from peft import LoraConfig

    n = num_layers(model)
    layers = list(range(max(0, n - top_layers), n)) if 0 < top_layers < n else None
    return LoraConfig(r=r, lora_alpha=alpha or 2 * r, lora_dropout=0.0, target_modules=lora_targets(model),
                      layers_to_transform=layers, bias="none", task_type="CAUSAL_LM")


class LabModels:
    """The base with "policy" and "reward" adapters, a value head and a reward head."""

    def __init__(self, base: LoadedBase, cfg: ModelConfig, reward_r: int = 16, reward_layers: int = 8):
        from peft import get_peft_model

        self.cfg = cfg
        self.tokenizer = base.tokenizer
        self.path = base.path
        self.device = next(base.model.parameters()).device
        self.peft = get_peft_model(base.model, lora_config(base.model, cfg.lora_r, cfg.lora_alpha, cfg.lora_layers),
                                   adapter_name=POLICY)
        self.peft.add_adapter(REWARD, lora_config(base.model, reward_r, top_layers=reward_layers))
        hidden = base.model.config.get_text_config().hidden_size
        self.value_head = nn.Linear(hidden, 1).to(self.device)
        self.reward_head = nn.Linear(hidden, 1).to(self.device)
        for head in (self.value_head, self.reward_head):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.use(POLICY)

    # -- adapters ---------------------------------------------------------------------------------
    @property
    def base_model(self) -> nn.Module:
        return self.peft.get_base_model()

    def use(self, adapter: str) -> None:
        """Activate an adapter and make exactly its LoRA weights trainable."""
        self.peft.set_adapter(adapter)
        for name, param in self.peft.named_parameters():
            param.requires_grad = "lora_" in name and f".{adapter}." in name

    def adapter_params(self, adapter: str) -> list[nn.Parameter]:
        return [p for n, p in self.peft.named_parameters() if "lora_" in n and f".{adapter}." in n]

    @contextlib.contextmanager
    def adapter(self, name: str):
        previous = self.peft.active_adapter
        self.use(name)
        try:
            yield
        finally:
            self.use(previous)

    @contextlib.contextmanager
    def reference(self):
        """The frozen reference model: the same base with every adapter switched off."""
        with self.peft.disable_adapter():
            yield

    def reset_reward_adapter(self, r: int, top_layers: int = 8) -> None:
        """Replace the reward adapter and head with fresh ones (rank r, on the top `top_layers` layers)."""
        previous = self.peft.active_adapter
        if previous == REWARD:
            self.peft.set_adapter(POLICY)
        self.peft.delete_adapter(REWARD)
        self.peft.add_adapter(REWARD, lora_config(self.base_model, r, top_layers=top_layers))
        nn.init.zeros_(self.reward_head.weight)
        nn.init.zeros_(self.reward_head.bias)
        self.use(previous)

    def reset_policy(self) -> None:
        """Zero the policy adapter's B matrices (so it equals the base) and the value head."""
        with torch.no_grad():
            for name, param in self.peft.named_parameters():
                if "lora_B" in name and f".{POLICY}." in name:
                    param.zero_()
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)

    # -- forward passes -----------------------------------------------------------------------------
    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last-layer hidden states (B, T, H) of whichever adapter is active.

        Position ids come from the attention mask, as during generation, so left-padded prompts see the
        same positions in every pass.
        """
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        out = self.base_model.model(input_ids=input_ids, attention_mask=attention_mask,
                                    position_ids=position_ids, use_cache=False)
        return out.last_hidden_state

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Token logits (B, T, V) for the given hidden states, in fp32 for stable log-softmax."""
        return self.base_model.lm_head(hidden).float()

    @staticmethod
    def last_index(attention_mask: torch.Tensor) -> torch.Tensor:
        """Index (B,) of the last real token in each row (masks may be left- and right-padded)."""
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        return (positions * attention_mask.long()).argmax(dim=1)

    def score(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Reward-model scores (B,): the reward head on the last real token, reward adapter active."""
        with self.adapter(REWARD):
            h = self.hidden(input_ids, attention_mask)
        last = h[torch.arange(h.shape[0], device=h.device), self.last_index(attention_mask)]
        return self.reward_head(last.float()).squeeze(-1)

    def base_weight_bytes(self) -> int:
        """Bytes of non-LoRA weights held by the model (the base appears exactly once)."""
        seen, total = set(), 0
        for name, tensor in list(self.peft.named_parameters()) + list(self.peft.named_buffers()):
            if "lora_" in name or tensor.data_ptr() in seen:
                continue
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
        return total


def load_lab_models(cfg: ModelConfig, reward_r: int = 16, device: torch.device | None = None) -> LabModels:
    return LabModels(load_base(cfg, device), cfg, reward_r=reward_r)
