"""Fast CPU sampling: a decode-only copy of the frozen 4-bit base in fp16 and a lean llama decode loop.

The trainable path stays 4-bit (bitsandbytes nf4 + peft LoRA). For sampling only, FastDecoder dequantizes
every nf4 projection once (bitsandbytes.functional.dequantize_4bit: the values the 4-bit path multiplies
with), fuses q/k/v and gate/up, and stores them for fbgemm's fp16-weight GEMM: the weights are read as fp16
(half the bytes of fp32) and multiplied in fp32 with fp32 activations. On the 2-core AVX2 CPU this sampled
2.5x (batch 8) to 3.4x (batch 4) faster than plain transformers fp32 `generate`, with next-token log-probs
within 0.03 of the fp32 path (docs/benchmarks.md). A decode step is built from few ops: RoPE as one batched
matmul, the query heads sharing a kv head as rows of one attention, a preallocated KV cache.

LoRA: the adapter's A/B matrices are read from the peft model at the start of every `generate` call and
applied as separate low-rank matmuls x @ A^T @ B^T * scale, so PPO's updated adapter weights are always the
ones sampled from; `adapter=None` samples the reference (no LoRA).

Only plain llama-style decoders are supported (checked by `supports`, then verified against the model's own
forward on a probe batch by generation.sampling.choose_decoder); others sample through the model itself.
"""
from __future__ import annotations

import math
import threading
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..modeling.trunk import positions
from .chat import context_length, encode_prompts
from .decode import Rollout, TokenStream, eos_token_ids


# -- linear backends: y = x @ W^T for x (M, K), W given as fp32 (N, K) --------------------------------------
class Fp32Linear:
    def __init__(self, w: torch.Tensor):
        self.wt = w.t().contiguous()  # (K, N): x @ wt was ~10-20% faster than F.linear at these shapes

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.wt


class Fp16Linear:
    """fbgemm's fp16-weight GEMM: weights stored as fp16 (half the bytes of fp32), converted in registers
    (F16C) and multiplied in fp32 with fp32 activations; only the weights' rounding to fp16 differs."""

    def __init__(self, w: torch.Tensor):
        self.packed = torch.ops.quantized.linear_prepack_fp16(w.float().contiguous(), None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic_fp16(x.contiguous(), self.packed)


class UnsupportedModel(ValueError):
    """The model's architecture is not the plain llama-style decoder this copy implements."""


def make_linear(w: torch.Tensor, kind: str):
    if kind == "fp16":
        return Fp16Linear(w)
    if kind == "fp32":
        return Fp32Linear(w)
    raise ValueError(kind)


def supports(model) -> str | None:
    """None if `model` (a *ForCausalLM) is a plain llama-style decoder, else the reason it is not."""
    cfg = model.config.get_text_config()
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None or not hasattr(inner, "embed_tokens") or not hasattr(inner, "rotary_emb"):
        return f"{cfg.model_type} has no plain decoder layer list"
    if getattr(cfg, "hidden_act", "silu") != "silu" or getattr(cfg, "sliding_window", None):
        return f"{cfg.model_type} uses an activation or attention window the fast copy does not implement"
    for layer in layers:
        att, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        names = ("q_proj", "k_proj", "v_proj", "o_proj")
        if att is None or mlp is None or not all(hasattr(att, n) for n in names) or \
                not all(hasattr(mlp, n) for n in ("gate_proj", "up_proj", "down_proj")):
            return f"{cfg.model_type} layers are not llama-style"
        for m in [getattr(att, n) for n in names] + [mlp.gate_proj, mlp.up_proj, mlp.down_proj]:
            if getattr(getattr(m, "base_layer", m), "bias", None) is not None:
                return f"{cfg.model_type} projections have biases"
        if hasattr(att, "q_norm") or hasattr(layer, "pre_feedforward_layernorm"):
            return f"{cfg.model_type} has extra norms in its layers"
    return None


def _dequantized(module) -> torch.Tensor:
    """fp32 (N, K) weight of a Linear4bit / Linear, or of peft's wrapper around one (its base layer)."""
    base = getattr(module, "base_layer", module)
    w = base.weight
    state = getattr(w, "quant_state", None)
    if state is not None:
        import bitsandbytes.functional as bnbf
        return bnbf.dequantize_4bit(w.data, state).float()
    return w.detach().float().clone()


def _rms(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return F.rms_norm(x, w.shape, w, eps)


class _Layer:
    def __init__(self, layer, eps: float, kind: str, q_scale: float):
        att, mlp = layer.self_attn, layer.mlp
        self.attn_modules = [att.q_proj, att.k_proj, att.v_proj, att.o_proj]
        # softmax's 1/sqrt(head_dim) is folded into the q rows (1/8 for head_dim 64: exact in binary)
        self.q_scale = q_scale
        wq, wk, wv = (_dequantized(m) for m in self.attn_modules[:3])
        self.qkv = make_linear(torch.cat([wq * q_scale, wk, wv]), kind)
        self.o = make_linear(_dequantized(att.o_proj), kind)
        self.gate_up = make_linear(torch.cat([_dequantized(mlp.gate_proj), _dequantized(mlp.up_proj)]), kind)
        self.down = make_linear(_dequantized(mlp.down_proj), kind)
        self.numel = sum(getattr(m, "base_layer", m).in_features * getattr(m, "base_layer", m).out_features
                         for m in self.attn_modules + [mlp.gate_proj, mlp.up_proj, mlp.down_proj])
        self.ln_in = layer.input_layernorm.weight.detach().float().clone()
        self.ln_post = layer.post_attention_layernorm.weight.detach().float().clone()
        self.eps = eps
        self.lora_qkv = None  # (A^T (K, r_q + r_k + r_v), B^T block-diagonal * scale) or None
        self.lora_o = None

    def set_lora(self, adapter: str | None) -> None:
        """Snapshot the adapter's current LoRA weights (call before every generate: PPO changes them)."""
        self.lora_qkv = self.lora_o = None
        if adapter is None:
            return
        parts = []
        for m in self.attn_modules:
            if hasattr(m, "lora_A") and adapter in m.lora_A:
                a = m.lora_A[adapter].weight.detach().float()             # (r, K)
                b = m.lora_B[adapter].weight.detach().float() * float(m.scaling[adapter])  # (N, r)
                parts.append((a, b))
            else:
                parts.append(None)
        qkv = parts[:3]
        if any(p is not None for p in qkv):
            outs = [m.out_features if hasattr(m, "out_features") else m.base_layer.out_features
                    for m in self.attn_modules[:3]]
            a_all = torch.cat([p[0] for p in qkv if p is not None])        # (R, K)
            b_all = torch.zeros(sum(outs), a_all.shape[0])                  # block-diagonal (N, R)
            row = col = 0
            for j, (p, n) in enumerate(zip(qkv, outs)):
                if p is not None:
                    b_all[row:row + n, col:col + p[0].shape[0]] = p[1] * (self.q_scale if j == 0 else 1.0)
                    col += p[0].shape[0]
                row += n
            self.lora_qkv = (a_all.t().contiguous(), b_all.t().contiguous())
        if parts[3] is not None:
            self.lora_o = (parts[3][0].t().contiguous(), parts[3][1].t().contiguous())


class FastDecoder:
    def __init__(self, model, kind: str = "fp16", head: str = "fp16"):
        reason = supports(model)
        if reason:
            raise UnsupportedModel(reason)
        cfg = model.config.get_text_config()
        inner = model.model
        self.config = model.config
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.eps = cfg.rms_norm_eps
        self.layers = [_Layer(layer, self.eps, kind, 1.0 / math.sqrt(self.head_dim)) for layer in inner.layers]
        half = self.head_dim // 2
        rot = torch.zeros(self.head_dim, self.head_dim)  # x @ rot == HF's rotate_half(x) = cat(-x2, x1)
        rot[torch.arange(half) + half, torch.arange(half)] = -1.0
        rot[torch.arange(half), torch.arange(half) + half] = 1.0
        self.rot = rot
        self.embed = inner.embed_tokens.weight.detach().float()  # shared with the model, not copied
        self.norm = inner.norm.weight.detach().float().clone()
        self.lm_head = make_linear(_dequantized(model.lm_head), head)
        rot = inner.rotary_emb
        self.inv_freq = rot.inv_freq.detach().float().clone()
        self.rope_scale = float(getattr(rot, "attention_scaling", 1.0))
        self.max_ctx = context_length(model)
        self.generation_config = getattr(model, "generation_config", None)

    @classmethod
    def build(cls, models, kind: str = "fp16", head: str = "fp16") -> "FastDecoder":
        """The decode copy of a loaded LabModels (its 4-bit base is left untouched)."""
        return cls(models.base_model, kind, head)

    def bytes(self) -> int:
        """Memory the copy adds: the weights it holds besides the model's own (fp16: 2 bytes a weight)."""
        per = 2 if isinstance(self.lm_head, Fp16Linear) else 4
        return per * (sum(L.numel for L in self.layers) + self.embed.numel())  # + the vocabulary projection

    def _new_cache(self, batch: int, slots: int) -> None:
        shape = (batch, self.n_kv, slots, self.head_dim)
        self.k_cache = [torch.empty(shape) for _ in self.layers]
        self.v_cache = [torch.empty(shape) for _ in self.layers]

    @staticmethod
    def _prefill_bias(query_mask: torch.Tensor) -> torch.Tensor:
        """(B, 1, P, P) additive mask: causal and padding; a pad query sees itself so no row is all -inf."""
        P = query_mask.shape[1]
        allowed = torch.ones(P, P, dtype=torch.bool).tril()[None] & query_mask.bool()[:, None, :]
        allowed |= torch.eye(P, dtype=torch.bool)[None]
        return torch.zeros(allowed.shape[0], 1, P, P).masked_fill(~allowed[:, None], float("-inf"))

    @torch.no_grad()
    def hidden(self, ids: torch.Tensor, mask: torch.Tensor, adapter: str | None = None) -> torch.Tensor:
        """Final hidden states (B, T, H) of a left-padded batch: to check the copy against the model."""
        for L in self.layers:
            L.set_lora(adapter)
        self._new_cache(ids.shape[0], ids.shape[1])
        try:
            return self._forward(ids, positions(mask), 0, self._prefill_bias(mask))
        finally:
            self.k_cache = self.v_cache = None

    # -- one forward over new tokens, appending to the static KV cache ----------------------------------------
    def _rope(self, pos: torch.Tensor):
        freqs = pos.float()[..., None] * self.inv_freq               # (B, T, D/2)
        emb = torch.cat([freqs, freqs], dim=-1)
        return (emb.cos() * self.rope_scale)[:, None], (emb.sin() * self.rope_scale)[:, None]  # (B,1,T,D)

    @staticmethod
    def _rotate(x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin

    def _forward(self, ids: torch.Tensor, pos: torch.Tensor, start: int, bias: torch.Tensor,
                 stop_layer: int | None = None, capture_layer: int | None = None, captured: list | None = None):
        """ids, pos (B, T) at cache slots start..start+T-1; bias (B, 1, T, start+T) additive attention mask.
        Returns the final hidden states (B, T, H) (None if stopped early at stop_layer)."""
        B, T = ids.shape
        H, KV, D = self.n_heads, self.n_kv, self.head_dim
        G = H // KV
        h = self.embed[ids]                                           # (B, T, hidden)
        cos, sin = self._rope(pos)
        end = start + T
        for i, L in enumerate(self.layers):
            if i == capture_layer and captured is not None:
                captured.append(h)
            if i == stop_layer:
                return None
            x = _rms(h, L.ln_in, self.eps).reshape(B * T, -1)
            qkv = L.qkv(x)
            if L.lora_qkv is not None:
                qkv = qkv + (x @ L.lora_qkv[0]) @ L.lora_qkv[1]
            q, k, v = qkv.split([H * D, KV * D, KV * D], dim=-1)
            q = self._rotate(q.view(B, T, H, D).transpose(1, 2), cos, sin)    # (B, H, T, D)
            k = self._rotate(k.view(B, T, KV, D).transpose(1, 2), cos, sin)   # (B, KV, T, D)
            self.k_cache[i][:, :, start:end] = k
            self.v_cache[i][:, :, start:end] = v.view(B, T, KV, D).transpose(1, 2)
            keys, values = self.k_cache[i][:, :, :end], self.v_cache[i][:, :, :end]
            o = F.scaled_dot_product_attention(q, keys.repeat_interleave(G, 1), values.repeat_interleave(G, 1),
                                               attn_mask=bias, scale=1.0)         # (B, H, T, D); q pre-scaled
            o = o.transpose(1, 2).reshape(B * T, H * D)
            out = L.o(o)
            if L.lora_o is not None:
                out = out + (o @ L.lora_o[0]) @ L.lora_o[1]
            h = h + out.view(B, T, -1)
            x = _rms(h, L.ln_post, self.eps).reshape(B * T, -1)
            g, u = L.gate_up(x).chunk(2, dim=-1)
            h = h + L.down(F.silu(g) * u).view(B, T, -1)
        if capture_layer is not None and capture_layer >= len(self.layers) and captured is not None:
            captured.append(h)
        return _rms(h, self.norm, self.eps)

    def _step(self, token: torch.Tensor, pos: torch.Tensor, slot: int, bias: torch.Tensor,
              stop_layer: int | None = None, capture_layer: int | None = None, captured: list | None = None):
        """One new token per row: token, pos (B,), written to cache slot `slot`; bias (B, 1, 1, slot + 1).
        The same math as _forward with fewer ops: RoPE of q and k as one batched matmul with a per-row
        64x64 rotation, and the G query heads sharing a kv head treated as G query rows of one attention."""
        B = token.shape[0]
        H, KV, D = self.n_heads, self.n_kv, self.head_dim
        G = H // KV
        freqs = pos.float()[:, None] * self.inv_freq                    # (B, D/2)
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos() * self.rope_scale, emb.sin() * self.rope_scale
        rope = torch.diag_embed(cos) + self.rot * sin[:, None, :]       # (B, D, D): x @ rope = x*cos + rot(x)*sin
        h = self.embed[token]                                           # (B, hidden)
        end = slot + 1
        for i, L in enumerate(self.layers):
            if i == capture_layer and captured is not None:
                captured.append(h[:, None])
            if i == stop_layer:
                return None
            x = F.rms_norm(h, L.ln_in.shape, L.ln_in, self.eps)
            qkv = L.qkv(x)
            if L.lora_qkv is not None:
                qkv = torch.addmm(qkv, x @ L.lora_qkv[0], L.lora_qkv[1])
            qk = torch.bmm(qkv[:, :(H + KV) * D].view(B, H + KV, D), rope)   # (B, H + KV, D) rotated
            kc, vc = self.k_cache[i], self.v_cache[i]
            kc[:, :, slot] = qk[:, H:]
            vc[:, :, slot] = qkv[:, (H + KV) * D:].view(B, KV, D)
            scores = torch.matmul(qk[:, :H].view(B, KV, G, D), kc[:, :, :end].transpose(-1, -2)).add_(bias)
            o = torch.matmul(torch.softmax(scores, dim=-1), vc[:, :, :end]).reshape(B, H * D)  # (B, KV, G, D)
            out = L.o(o)
            if L.lora_o is not None:
                out = torch.addmm(out, o @ L.lora_o[0], L.lora_o[1])
            h = h + out
            g, u = L.gate_up(F.rms_norm(h, L.ln_post.shape, L.ln_post, self.eps)).chunk(2, dim=-1)
            h = h + L.down(F.silu(g) * u)
        if capture_layer is not None and capture_layer >= len(self.layers) and captured is not None:
            captured.append(h[:, None])
        return F.rms_norm(h, self.norm.shape, self.norm, self.eps)

    def logits(self, h_last: torch.Tensor) -> torch.Tensor:
        return self.lm_head(h_last.contiguous())

    # -- sampling ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, tokenizer, prompts: Sequence[str], max_new_tokens: int, temperature: float, top_p: float,
                 seed: int | None = None, adapter: str | None = "policy", capture_layer: int | None = None,
                 on_step: Callable[[torch.Tensor], None] | None = None, stop_event: threading.Event | None = None,
                 suppress_eos: bool = False, query: tuple[torch.Tensor, torch.Tensor] | None = None) -> Rollout:
        """Like decode.generate (same positions, masks, sampler and seeding), on the fast copy.
        adapter: the LoRA adapter to apply ("policy"), or None for the reference. capture_layer: index of the
        decoder layer whose input states to return in Rollout.trunk_hidden (models.cut), or None.
        suppress_eos is for benchmarks only (every row samples max_new_tokens tokens)."""
        for L in self.layers:
            L.set_lora(adapter)
        query_ids, query_mask = query if query is not None else encode_prompts(tokenizer, prompts, "cpu")
        B, P = query_ids.shape
        max_new_tokens = max(1, min(max_new_tokens, self.max_ctx - P))
        total = P + max_new_tokens
        self._new_cache(B, total)
        if seed is not None:
            torch.manual_seed(seed)
        stream = TokenStream(tokenizer, eos_token_ids(tokenizer, self), B, max_new_tokens, temperature, top_p, "cpu",
                             on_step, stop_event, suppress_eos)
        captured: list[torch.Tensor] = [] if capture_layer is not None else None

        # additive key mask for all slots: -inf on prompt padding, 0 on real prompt and every response slot
        key_ok = torch.cat([query_mask.bool(), torch.ones(B, max_new_tokens, dtype=torch.bool)], dim=1)
        key_bias = torch.zeros(B, total).masked_fill(~key_ok, float("-inf"))
        bias = self._prefill_bias(query_mask)
        pos = positions(query_mask)
        h = self._forward(query_ids, pos, 0, bias, capture_layer=capture_layer, captured=captured)
        logits = self.logits(h[:, -1])
        pos = pos[:, -1]
        step_bias = key_bias[:, None, None, :]                          # (B, 1, 1, total)
        try:
            for step in range(max_new_tokens):
                token, last = stream.pick(logits)
                if last and capture_layer is None:
                    break
                pos = pos + 1
                slot = P + step
                h = self._step(token, pos, slot, step_bias[..., :slot + 1],
                               stop_layer=capture_layer if last else None, capture_layer=capture_layer,
                               captured=captured)
                if last:
                    break
                logits = self.logits(h)
        finally:
            self.k_cache = self.v_cache = None  # a stopped run frees its cache too
        return stream.rollout(prompts, query_ids, query_mask, captured)
