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

from .config import ConfigError, ModelConfig
from . import default_model
from .generation import positions

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


def _cpu_has_bf16() -> bool:
    try:
        from bitsandbytes.functional import has_avx512bf16
        return bool(has_avx512bf16())
    except ImportError:
        return False


def _quantization(precision: str, device: torch.device):
    if precision != "4bit":
        return None
    from transformers import BitsAndBytesConfig

    # bf16 matmuls where the hardware has them (CUDA; CPUs with AVX512-BF16/AMX, where the PPO minibatch passes
    # ran ~15% faster than fp32, measured), fp32 elsewhere. Activations between layers stay fp32 on CPU.
    compute = torch.bfloat16 if device.type == "cuda" or _cpu_has_bf16() else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)


def keep_4bit_weights_differentiable(model: nn.Module) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for its CPU inference kernel (all layers, at load).

    On CPUs with AVX512-BF16, a Linear4bit layer that runs once in eval mode without grad (every generate)
    converts its weight for good to a packed layout whose kernel has no backward. Every later forward then
    goes through it and gradients stop there: measured here, the input-gradient norm fell from ~1250 to 2.7
    after one generate, and PPO did not learn. LabModels turns the packed kernel back on only below the
    adapted layers (allow_fast_4bit_sampling), where no gradient ever flows. Returns the layers switched.
    """
    return _set_4bit_packing(model.modules(), False)


def allow_fast_4bit_sampling(layers) -> int:
    """Let bitsandbytes pack these layers' 4-bit weights for its CPU inference kernel.

    Only for layers no gradient passes through (below every adapter). Sampling is ~40% faster there (a
    decode step of the 8-row PPO batch: 38 ms packed vs 62 ms through dequantize-and-matmul, measured).
    """
    return _set_4bit_packing([m for layer in layers for m in layer.modules()], True)


def _set_4bit_packing(modules, allowed: bool) -> int:
    try:
        import bitsandbytes as bnb
    except ImportError:
        return 0
    packable = allowed and _cpu_has_bf16()
    switched = 0
    for module in modules:
        if isinstance(module, bnb.nn.Linear4bit) and hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = packable
            switched += 1
    return switched


@dataclass
class LoadedBase:
    model: nn.Module
    tokenizer: object
    path: str


@dataclass
class Trunk:
    """A batch after the frozen bottom layers: hidden (B, T, H) entering the first layer that has an adapter.

    hidden is None when the model runs unsplit; the top pass then starts from input_ids. Pad positions are
    masked in attention, so rows can be re-padded (stack) without changing any real token's result.
    """
    input_ids: torch.Tensor       # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    hidden: torch.Tensor | None   # (B, T, H)

    def select(self, rows: torch.Tensor) -> "Trunk":
        return Trunk(self.input_ids[rows], self.attention_mask[rows],
                     None if self.hidden is None else self.hidden[rows])

    def unstack(self) -> list["Trunk"]:
        """One unpadded Trunk per row."""
        out = []
        for i in range(self.input_ids.shape[0]):
            keep = self.attention_mask[i].bool()
            out.append(Trunk(self.input_ids[i, keep][None], self.attention_mask[i, keep][None],
                             None if self.hidden is None else self.hidden[i, keep][None]))
        return out

    @staticmethod
    def stack(rows: list["Trunk"], pad_id: int = 0) -> "Trunk":
        """Left-pad single-row trunks to the widest and stack them."""
        width = max(r.input_ids.shape[1] for r in rows)
        ids, masks, hidden = [], [], []
        for r in rows:
            pad = width - r.input_ids.shape[1]
            ids.append(nn.functional.pad(r.input_ids, (pad, 0), value=pad_id))
            masks.append(nn.functional.pad(r.attention_mask, (pad, 0), value=0))
            if r.hidden is not None:
                hidden.append(nn.functional.pad(r.hidden, (0, 0, pad, 0)))
        return Trunk(torch.cat(ids), torch.cat(masks), torch.cat(hidden) if hidden else None)


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
        self.cut = 0  # unsplit until _find_cut has checked the split
        self.cut = self._find_cut()
        # Layers below the adapters never carry a gradient: let them use the fast packed 4-bit CPU kernel.
        # Packing is one-way, so adapters may not reach below this line later (reset_reward_adapter checks).
        self.frozen_below = self.cut
        allow_fast_4bit_sampling(self.base_model.get_decoder().layers[:self.cut] if self.cut else [])

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
        n = num_layers(self.base_model)
        lowest = n - top_layers if 0 < top_layers < n else 0
        if lowest < self.frozen_below:
            raise ConfigError(f"The reward adapter can cover at most the top {n - self.frozen_below} layers with "
                              f"this model loaded (the layers below are packed for fast sampling), not {top_layers}.")
        previous = self.peft.active_adapter
        if previous == REWARD:
            self.peft.set_adapter(POLICY)
        self.peft.delete_adapter(REWARD)
        self.peft.add_adapter(REWARD, lora_config(self.base_model, r, top_layers=top_layers))
        nn.init.zeros_(self.reward_head.weight)
        nn.init.zeros_(self.reward_head.bias)
        self.use(previous)
        self.cut = self._find_cut()  # the new adapter may reach lower layers

    def reset_policy(self) -> None:
        """Zero the policy adapter's B matrices (so it equals the base) and the value head."""
        with torch.no_grad():
            for name, param in self.peft.named_parameters():
                if "lora_B" in name and f".{POLICY}." in name:
                    param.zero_()
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)

    # -- forward passes -----------------------------------------------------------------------------
    # Both adapters sit on the top layers only, so the layers below the first adapted one compute the same
    # hidden states for the policy, the reward model and the reference. Every pass is split there: the
    # frozen "trunk" runs once per batch without grad, and only the top layers run per adapter and per PPO
    # minibatch (see Trunk). The split reuses the model's own forward over a slice of its layers, and is
    # checked against an unsplit forward when the adapters are built; a model where it does not match
    # exactly runs unsplit.
    def trunk(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Trunk:
        """The batch after the frozen bottom layers (no grad): what every adapter and the reference share."""
        if not self.cut:
            return Trunk(input_ids, attention_mask, None)
        with torch.no_grad(), self._layer_slice(0, self.cut, final_norm=False) as decoder:
            out = decoder(input_ids=input_ids, attention_mask=attention_mask,
                          position_ids=positions(attention_mask), use_cache=False)
        return Trunk(input_ids, attention_mask, out.last_hidden_state)

    def trunk_top(self) -> nn.Module | None:
        """The first adapted decoder layer (whose input is the trunk), or None when the model runs unsplit."""
        return self.base_model.get_decoder().layers[self.cut] if self.cut else None

    def rollout_trunk(self, rollout) -> Trunk:
        """The trunk of a generation.Rollout: the states captured while sampling, if any, else a fresh pass."""
        ids, mask = rollout.input_ids, rollout.attention_mask
        if self.cut and rollout.trunk_hidden is not None and rollout.trunk_hidden.shape[1] == ids.shape[1]:
            return Trunk(ids, mask, rollout.trunk_hidden)
        return self.trunk(ids, mask)

    def hidden_from(self, trunk: Trunk) -> torch.Tensor:
        """Last-layer hidden states (B, T, H) of whichever adapter is active, from a trunk."""
        if trunk.hidden is None:
            out = self.base_model.get_decoder()(input_ids=trunk.input_ids, attention_mask=trunk.attention_mask,
                                                position_ids=positions(trunk.attention_mask), use_cache=False)
            return out.last_hidden_state
        with self._layer_slice(self.cut, None, final_norm=True) as decoder:
            out = decoder(inputs_embeds=trunk.hidden, attention_mask=trunk.attention_mask,
                          position_ids=positions(trunk.attention_mask), use_cache=False)
        return out.last_hidden_state

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last-layer hidden states (B, T, H) of whichever adapter is active."""
        return self.hidden_from(self.trunk(input_ids, attention_mask))

    @contextlib.contextmanager
    def _layer_slice(self, start: int, stop: int | None, final_norm: bool):
        """The decoder with only layers[start:stop] (and the final norm only if asked) for one call."""
        decoder = self.base_model.get_decoder()
        layers, norm = decoder.layers, decoder.norm
        decoder.layers = layers[start:stop]
        if not final_norm:
            decoder.norm = nn.Identity()
        try:
            yield decoder
        finally:
            decoder.layers, decoder.norm = layers, norm

    def _find_cut(self) -> int:
        """Index of the lowest decoder layer with a LoRA adapter, if splitting there gives exactly the
        unsplit result; otherwise 0 (run unsplit)."""
        decoder = self.base_model.get_decoder()
        if not isinstance(getattr(decoder, "layers", None), nn.ModuleList) or not hasattr(decoder, "norm"):
            return 0
        layer_types = getattr(self.base_model.config.get_text_config(), "layer_types", None)
        if layer_types and len(set(layer_types)) > 1:
            return 0  # per-layer attention kinds are indexed by position in the layer list: do not slice
        adapted = [i for i, layer in enumerate(decoder.layers)
                   if any(hasattr(m, "lora_A") for m in layer.modules())]
        cut = min(adapted) if adapted else 0
        if cut == 0:
            return 0
        ids, mask = self._probe_batch()
        previous = self.cut
        with torch.no_grad(), self.reference():
            whole = self.hidden_from(Trunk(ids, mask, None))  # no trunk: every layer from the token ids
            self.cut = cut
            try:
                split = self.hidden(ids, mask)
            finally:
                self.cut = previous
        real = mask.bool()
        return cut if torch.allclose(whole[real], split[real], rtol=1e-4, atol=1e-4) else 0

    def _probe_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Two short rows, one left-padded, to check the split with padding and positions."""
        vocab = int(self.base_model.get_input_embeddings().num_embeddings)
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(0, vocab, (2, 12), generator=gen).to(self.device)
        mask = torch.ones_like(ids)
        mask[1, :4] = 0
        return ids, mask

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
        return self.score_from(self.trunk(input_ids, attention_mask))

    def score_from(self, trunk: Trunk) -> torch.Tensor:
        with self.adapter(REWARD):
            h = self.hidden_from(trunk)
        last = h[torch.arange(h.shape[0], device=h.device), self.last_index(trunk.attention_mask)]
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


def load_lab_models(cfg: ModelConfig, reward_r: int = 16, device: torch.device | None = None,
                    reward_layers: int = 8) -> LabModels:
    return LabModels(load_base(cfg, device), cfg, reward_r=reward_r, reward_layers=reward_layers)
