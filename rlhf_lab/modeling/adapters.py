"""One base model in memory with named LoRA adapters, each with an optional scalar head.

"policy" (with the value head) and "reward" (with the reward head) always exist; more adapters (SFT, DPO,
an older policy version to compare) are added by name. The reference model is the same base with adapters
disabled, so there is never a second copy of the base weights. Every forward pass goes through the trunk
split (trunk.py) so positions and masks are built the same way for generation, scoring and training.
"""
from __future__ import annotations

import contextlib
import math
import warnings

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from . import trunk as split
from .loading import LoadedBase, load_base, num_layers
from .quantization import allow_fast_4bit_sampling
from .readout import last_index, read_out
from .trunk import Trunk

POLICY = "policy"
REWARD = "reward"


def lora_targets(model: nn.Module):
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    attention = ["q_proj", "k_proj", "v_proj", "o_proj"]
    if all(t in names for t in attention):
        return attention  # attention-only LoRA: ~40% cheaper than all-linear on CPU, enough for style
    return "all-linear"


def lora_config(model: nn.Module, r: int, alpha: int | None = None, top_layers: int = 0):
    """LoRA on the attention projections; with top_layers, only on the last that many decoder layers."""
    from peft import LoraConfig

    n = num_layers(model)
    layers = list(range(max(0, n - top_layers), n)) if 0 < top_layers < n else None
    return LoraConfig(r=r, lora_alpha=alpha or 2 * r, lora_dropout=0.0, target_modules=lora_targets(model),
                      layers_to_transform=layers, bias="none", task_type="CAUSAL_LM")


def _zero_head(head: nn.Linear) -> nn.Linear:
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return head


def wrap_peft(model: nn.Module, config, **kwargs):
    """peft.get_peft_model without the FutureWarning peft 0.21 raises on every call by reading transformers'
    deprecated `is_gradient_checkpointing` (nothing the caller can change)."""
    from peft import get_peft_model

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return get_peft_model(model, config, **kwargs)


class LabModels:
    """The base wrapped by peft (`model`), its named adapters and their scalar heads (`heads`)."""

    def __init__(self, base: LoadedBase, cfg: ModelConfig, reward_r: int = 16, reward_layers: int = 8,
                 reward_readout: str = "last+mean"):
        self.cfg = cfg
        self.tokenizer = base.tokenizer
        # generation.chat reads it: every prompt the lab builds carries the same system message
        self.tokenizer.lab_system_prompt = cfg.system_prompt
        self.path = base.path
        self.device = next(base.model.parameters()).device
        self.model = wrap_peft(base.model, lora_config(base.model, cfg.lora_r, cfg.lora_alpha, cfg.lora_layers),
                               adapter_name=POLICY)
        self.hidden_size = base.model.config.get_text_config().hidden_size
        self.heads: dict[str, nn.Linear] = {POLICY: self._new_head()}
        self.readouts: dict[str, str] = {}  # where each head is read (readout.py); saved with the adapter
        self.cut = 0  # unsplit until _find_cut has checked the split
        self.frozen_below = 0
        self.add_adapter(REWARD, reward_r, reward_layers, readout=reward_readout)
        self.use(POLICY)
        self.cut = self._find_cut()
        # Layers below the adapters never carry a gradient: let them use the fast packed 4-bit CPU kernel.
        # Packing is one-way, so adapters may not reach below this line later (add_adapter checks).
        self.frozen_below = self.cut
        allow_fast_4bit_sampling(self.decoder.layers[:self.cut] if self.cut else [])

    # -- the adapter registry ---------------------------------------------------------------------------
    @property
    def base_model(self) -> nn.Module:
        return self.model.get_base_model()

    @property
    def decoder(self) -> nn.Module:
        return self.base_model.get_decoder()

    @property
    def value_head(self) -> nn.Linear:
        return self.heads[POLICY]

    @property
    def reward_head(self) -> nn.Linear:
        return self.heads[REWARD]

    def adapters(self) -> list[str]:
        return list(self.model.peft_config)

    def _new_head(self) -> nn.Linear:
        return _zero_head(nn.Linear(self.hidden_size, 1).to(self.device))

    def add_adapter(self, name: str, r: int, top_layers: int = 8, head: bool = True, readout: str = "last") -> None:
        """Add (or replace) adapter `name`: fresh LoRA of rank r on the top `top_layers` layers (0 = all), and a
        zeroed scalar head if asked. A fresh LoRA equals the base (its B matrices start at zero)."""
        n = num_layers(self.base_model)
        lowest = n - top_layers if 0 < top_layers < n else 0
        if lowest < self.frozen_below:
            raise ConfigError(f"An adapter can cover at most the top {n - self.frozen_below} layers with this "
                              f"model loaded (the layers below are packed for fast sampling), not {top_layers}.")
        previous = self.model.active_adapter
        if name in self.model.peft_config:
            if previous == name:
                self.model.set_adapter(POLICY if name != POLICY else REWARD)
            self.model.delete_adapter(name)
        self.model.add_adapter(name, lora_config(self.base_model, r, top_layers=top_layers))
        if head:
            self.heads[name] = self._new_head()
            self.readouts[name] = readout
        self.use(previous if previous in self.model.peft_config else POLICY)
        if self.cut:
            self.cut = self._find_cut()  # the new adapter may reach lower layers

    def reset_reward_adapter(self, r: int, top_layers: int = 8, readout: str = "last+mean", seed: int = 0) -> None:
        """A fresh reward adapter and head (rank r, on the top `top_layers` layers, read as `readout`).

        Initialised from `seed`, not from wherever the global generator stood: what the session did before
        (opening it, sampling, a policy that failed to load) must not change the model that training gives.
        peft draws the LoRA matrices on the CPU before moving them to the model's device, so only the CPU
        generator is seeded, and it is put back afterwards."""
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            self.add_adapter(REWARD, r, top_layers, readout=readout)

    def reset_policy(self, seed: int = 0) -> None:
        """The policy adapter as fresh: A matrices drawn from `seed` the way peft draws them (Kaiming-uniform,
        a=sqrt(5)), B matrices and the value head zeroed, so it equals the base.

        Drawn from `seed` rather than kept from model load: A is where training starts, and what the process
        did before loading (or since) must not change what PPO, DPO or SFT from the base gives. The draw is
        on a private CPU generator, so the global one is left alone and CPU and GPU get the same start."""
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param in self.lora_params(POLICY, "lora_A"):
                fresh = torch.empty(param.shape, dtype=torch.float32)
                nn.init.kaiming_uniform_(fresh, a=math.sqrt(5), generator=gen)
                param.copy_(fresh)
            for param in self.lora_params(POLICY, "lora_B"):
                param.zero_()
        _zero_head(self.value_head)

    def use(self, adapter: str) -> None:
        """Activate an adapter and make exactly its LoRA weights trainable."""
        self.model.set_adapter(adapter)
        for name, param in self.model.named_parameters():
            param.requires_grad = "lora_" in name and f".{adapter}." in name

    def lora_params(self, adapter: str, kind: str = "lora_") -> list[nn.Parameter]:
        return [p for n, p in self.model.named_parameters() if kind in n and f".{adapter}." in n]

    def adapter_params(self, adapter: str) -> list[nn.Parameter]:
        return self.lora_params(adapter)

    def trainable_params(self, adapter: str) -> list[nn.Parameter]:
        """The adapter's LoRA weights and its head, if it has one: what an optimizer for it updates."""
        head = self.heads.get(adapter)
        return self.lora_params(adapter) + (list(head.parameters()) if head is not None else [])

    @contextlib.contextmanager
    def adapter(self, name: str):
        previous = self.model.active_adapter
        self.use(name)
        try:
            yield
        finally:
            self.use(previous)

    @contextlib.contextmanager
    def reference(self):
        """The frozen reference model: the same base with every adapter switched off."""
        with self.model.disable_adapter():
            yield

    def snapshot(self, adapter: str) -> list[torch.Tensor]:
        """Copies of an adapter's trainable tensors (LoRA and head), to undo a half-done step or run."""
        return [p.detach().clone() for p in self.trainable_params(adapter)]

    def restore(self, adapter: str, saved: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, value in zip(self.trainable_params(adapter), saved):
                p.copy_(value)

    # -- forward passes ---------------------------------------------------------------------------------
    def trunk(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              answer_mask: torch.Tensor | None = None) -> Trunk:
        """The batch after the frozen bottom layers (no grad): what every adapter and the reference share."""
        trunk = split.run_bottom(self.decoder, self.cut, input_ids, attention_mask)
        trunk.answer_mask = answer_mask
        return trunk

    def trunk_top(self) -> nn.Module | None:
        """The first adapted decoder layer (whose input is the trunk), or None when the model runs unsplit."""
        return self.decoder.layers[self.cut] if self.cut else None

    def rollout_trunk(self, rollout) -> Trunk:
        """The trunk of a generation Rollout: the states captured while sampling, if any, else a fresh pass."""
        ids, mask = rollout.input_ids, rollout.attention_mask
        answer = torch.cat([torch.zeros_like(rollout.query_mask), rollout.response_mask], dim=1)
        if self.cut and rollout.trunk_hidden is not None and rollout.trunk_hidden.shape[1] == ids.shape[1]:
            return Trunk(ids, mask, rollout.trunk_hidden, answer)
        return self.trunk(ids, mask, answer)

    def hidden_from(self, trunk: Trunk) -> torch.Tensor:
        """Last-layer hidden states (B, T, H) of whichever adapter is active, from a trunk."""
        return split.run_top(self.decoder, self.cut, trunk)

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last-layer hidden states (B, T, H) of whichever adapter is active."""
        return self.hidden_from(self.trunk(input_ids, attention_mask))

    def _find_cut(self) -> int:
        """Index of the lowest decoder layer with a LoRA adapter, if splitting there gives exactly the
        unsplit result; otherwise 0 (run unsplit)."""
        if not split.can_split(self.decoder, self.base_model.config.get_text_config()):
            return 0
        adapted = [i for i, layer in enumerate(self.decoder.layers)
                   if any(hasattr(m, "lora_A") for m in layer.modules())]
        cut = min(adapted) if adapted else 0
        if cut == 0:
            return 0
        vocab = int(self.base_model.get_input_embeddings().num_embeddings)
        ids, mask = split.probe_batch(vocab, self.device)
        with torch.no_grad(), self.reference():
            whole = split.run_top(self.decoder, 0, Trunk(ids, mask, None))  # every layer from the token ids
            split_out = split.run_top(self.decoder, cut, split.run_bottom(self.decoder, cut, ids, mask))
        real = mask.bool()
        return cut if torch.allclose(whole[real], split_out[real], rtol=1e-4, atol=1e-4) else 0

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Token logits (B, T, V) for the given hidden states, in fp32 for stable log-softmax."""
        return self.base_model.lm_head(hidden).float()

    def score(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, adapter: str = REWARD,
              answer_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (B,): the adapter's head where its read-out looks (readout.py), that adapter active."""
        return self.score_from(self.trunk(input_ids, attention_mask, answer_mask), adapter)

    def score_from(self, trunk: Trunk, adapter: str = REWARD) -> torch.Tensor:
        with self.adapter(adapter):
            h = self.hidden_from(trunk)
        kind = self.readouts.get(adapter, "last")
        if kind == "last":  # the head on one token per row, not on all of them
            h = h[torch.arange(h.shape[0], device=h.device), last_index(trunk.attention_mask)][:, None]
            return self.heads[adapter](h.float())[:, 0, 0]
        token_scores = self.heads[adapter](h.float()).squeeze(-1)
        return read_out(token_scores, trunk.attention_mask, trunk.answer_mask, kind)

    def base_weight_bytes(self) -> int:
        """Bytes of non-LoRA weights held by the model (the base appears exactly once)."""
        seen, total = set(), 0
        for name, tensor in list(self.model.named_parameters()) + list(self.model.named_buffers()):
            if "lora_" in name or tensor.data_ptr() in seen:
                continue
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
        return total


def load_lab_models(cfg: ModelConfig, reward_r: int = 16, device: torch.device | None = None,
                    reward_layers: int = 8, reward_readout: str = "last+mean") -> LabModels:
    return LabModels(load_base(cfg, device), cfg, reward_r=reward_r, reward_layers=reward_layers,
                     reward_readout=reward_readout)
