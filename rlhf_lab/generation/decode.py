"""Sample completions: one batched generate call, explicit attention and response masks.

Masks are never rebuilt from `ids != pad_token_id`: SmolLM2 (like many small models) uses the same id for
padding and end-of-sequence, so that test would hide every EOS.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..errors import Stopped
from ..modeling.trunk import positions
from .chat import context_length, encode_prompts


@dataclass
class Rollout:
    prompts: list[str]          # (B,) the prompt text of each row
    query_ids: torch.Tensor     # (B, P) left-padded prompt tokens
    query_mask: torch.Tensor    # (B, P) 1 on real prompt tokens
    response_ids: torch.Tensor  # (B, R) sampled tokens, padded after the end
    response_mask: torch.Tensor  # (B, R) 1 on response tokens up to and including the first EOS
    texts: list[str]            # (B,) decoded responses without special tokens
    truncated: torch.Tensor     # (B,) True where max_new_tokens was reached without EOS
    trunk_hidden: torch.Tensor | None = None  # (B, P + R, H) input of the `capture` layer, if one was given

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.query_ids, self.response_ids], dim=1)

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.query_mask, self.response_mask], dim=1)

    @property
    def response_lengths(self) -> torch.Tensor:
        return self.response_mask.sum(dim=1)




def response_mask_from(response_ids: torch.Tensor, eos_ids: set[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, R) mask of real response tokens (through the first EOS) and (B,) truncated flags."""
    is_eos = torch.zeros_like(response_ids, dtype=torch.bool)
    for e in eos_ids:
        is_eos |= response_ids == e
    # A token is real if no EOS came strictly before it.
    eos_before = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0
    mask = (~eos_before).long()
    truncated = ~is_eos.any(dim=1)
    return mask, truncated


def eos_token_ids(tokenizer, model) -> set[int]:
    ids = set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for e in (gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos]) + [tokenizer.eos_token_id]:
        if e is not None:
            ids.add(int(e))
    return ids


def sample_next(logits: torch.Tensor, temperature: float, top_p: float,
                nucleus_ks: tuple[int, ...] = (128, 1024)) -> torch.Tensor:
    """One token per row from (B, V) logits, with temperature and nucleus (top_p) sampling -> (B,).

    Sampled by inverse CDF: a float64 cumulative sum and one uniform draw per row. torch.multinomial costs
    ~8 ms per call for 8 x 49k probabilities on the 2-core CPU (its exponential draws), this ~0.3 ms: at 64
    steps per answer that is half a second of every PPO rollout. Zero-probability tokens are never drawn.
    The nucleus edge comes from a top-k (128, then 1024 tokens) instead of sorting the whole vocabulary
    (18-23 ms a call at batch 8 here, against 1.6 ms); a wider nucleus falls back to the full sort. Both keep
    the same tokens (up to exact ties at the edge) and draw in vocabulary order.
    """
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        probs = _nucleus(probs, top_p, nucleus_ks)
    cdf = probs.double().cumsum(dim=-1)
    draw = torch.rand(cdf.shape[0], 1, dtype=cdf.dtype, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, draw, right=True).squeeze(-1).clamp(max=probs.shape[-1] - 1)


def _nucleus(probs: torch.Tensor, top_p: float, ks: tuple[int, ...]) -> torch.Tensor:
    """probs (B, V) with everything outside each row's nucleus set to 0: the most likely tokens until their
    mass reaches top_p (always at least one)."""
    for k in ks:
        if k >= probs.shape[-1]:
            break
        top = probs.topk(k, dim=-1).values                               # (B, k), descending
        kept = (top.cumsum(dim=-1) - top) < top_p                        # a prefix of the top-k
        if bool(kept[:, -1].any()):
            continue                                                     # some nucleus has more than k tokens
        edge = top.gather(-1, kept.sum(-1, keepdim=True) - 1)           # smallest kept probability per row
        return probs.masked_fill(probs < edge, 0.0)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    before = sorted_p.cumsum(dim=-1) - sorted_p
    sorted_p = sorted_p.masked_fill(before >= top_p, 0.0)
    return torch.zeros_like(probs).scatter_(-1, order, sorted_p)


class TokenStream:
    """What every decode loop does per token, whatever runs the forward (the model here, the fast CPU copy in
    fast_cpu.py): the stop check, EOS suppression for benchmarks, sampling, padding rows that have finished,
    the progress callback; and the Rollout at the end."""

    def __init__(self, tokenizer, eos_ids: set[int], rows: int, max_new_tokens: int, temperature: float,
                 top_p: float, device, on_step: Callable[[torch.Tensor], None] | None = None,
                 stop_event: threading.Event | None = None, suppress_eos: bool = False):
        self.tokenizer, self.eos_ids = tokenizer, eos_ids
        self.eos = torch.tensor(sorted(eos_ids), device=device)
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.on_step, self.stop_event, self.suppress_eos = on_step, stop_event, suppress_eos
        self.finished = torch.zeros(rows, dtype=torch.bool, device=device)
        self.tokens: list[torch.Tensor] = []

    def pick(self, logits: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """The next token (B,) from the last position's logits (B, V), and whether it is the last one."""
        if self.stop_event is not None and self.stop_event.is_set():
            raise Stopped("generation stopped")
        if self.suppress_eos:  # benchmarks only: every row samples max_new_tokens tokens
            logits = logits.index_fill(-1, self.eos, float("-inf"))
        token = sample_next(logits, self.temperature, self.top_p)
        token = token.masked_fill(self.finished, self.tokenizer.pad_token_id)
        self.tokens.append(token)
        self.finished |= torch.isin(token, self.eos)
        if self.on_step is not None:
            self.on_step(torch.stack(self.tokens, dim=1))
        return token, bool(self.finished.all()) or len(self.tokens) == self.max_new_tokens

    def rollout(self, prompts: Sequence[str], query_ids: torch.Tensor, query_mask: torch.Tensor,
                captured: list[torch.Tensor] | None) -> Rollout:
        response_ids = torch.stack(self.tokens, dim=1)
        response_mask, truncated = response_mask_from(response_ids, self.eos_ids)
        response_ids = response_ids.masked_fill(response_mask == 0, self.tokenizer.pad_token_id)
        texts = self.tokenizer.batch_decode(response_ids, skip_special_tokens=True)
        trunk_hidden = torch.cat(captured, dim=1) if captured else None
        return Rollout(list(prompts), query_ids, query_mask, response_ids, response_mask,
                       [t.strip() for t in texts], truncated, trunk_hidden)


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int, temperature: float, top_p: float,
             seed: int | None = None, on_step: Callable[[torch.Tensor], None] | None = None,
             stop_event: threading.Event | None = None, capture: torch.nn.Module | None = None,
             suppress_eos: bool = False) -> Rollout:
    """Sample one completion per entry of `prompts` (repeat a prompt K times for K completions).

    A plain decode loop over the model's forward with a KV cache: the same positions (from the mask) and
    masks as every scoring pass, the true sampling distribution (no processors from the model's generation
    config), a progress callback with the tokens so far, and a stop event checked every token.
    With `capture` (a decoder layer), the hidden states entering it at every position are kept in
    Rollout.trunk_hidden: PPO reuses them instead of running the frozen bottom layers again.
    """
    from transformers import DynamicCache

    device = next(model.parameters()).device
    query_ids, query_mask = encode_prompts(tokenizer, prompts, device)
    ctx = context_length(model)
    max_new_tokens = max(1, min(max_new_tokens, ctx - query_ids.shape[1]))
    if seed is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    stream = TokenStream(tokenizer, eos_token_ids(tokenizer, model), len(prompts), max_new_tokens, temperature,
                         top_p, device, on_step, stop_event, suppress_eos)
    was_training = model.training
    model.eval()
    captured: list[torch.Tensor] = []
    hook = None
    if capture is not None:
        hook = capture.register_forward_pre_hook(
            lambda _m, args, kwargs: captured.append(args[0] if args else kwargs["hidden_states"]),
            with_kwargs=True)
    try:
        cache = DynamicCache(config=model.config)
        mask = query_mask
        pos = positions(mask)
        out = model(input_ids=query_ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                    use_cache=True, logits_to_keep=1)
        while True:
            token, last = stream.pick(out.logits[:, -1])
            if last and capture is None:
                break  # the last token is fed only to capture its hidden state
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            pos = pos[:, -1:] + 1
            out = model(input_ids=token[:, None], attention_mask=mask, position_ids=pos, past_key_values=cache,
                        use_cache=True, logits_to_keep=1)
            if last:
                break
    finally:
        model.train(was_training)
        if hook is not None:
            hook.remove()
    return stream.rollout(prompts, query_ids, query_mask, captured)


def decode_partial(tokenizer, partial: torch.Tensor, eos: set[int]) -> list[str]:
    """Texts so far for a (B, t) tensor of new tokens, cut at each row's first EOS.

    A character can span several byte-level tokens (an emoji is often 2-4): decoding while only some of them
    have arrived gives U+FFFD. Each row is cut back to its last complete character, so a streamed card never
    shows a broken one; the missing bytes show up with the next update.
    """
    mask, _ = response_mask_from(partial, eos)
    rows = partial.masked_fill(mask == 0, next(iter(eos)))
    texts = tokenizer.batch_decode(rows, skip_special_tokens=True)
    for i, text in enumerate(texts):
        real = n = int(mask[i].sum())
        # A UTF-8 character is at most 4 bytes, so at most 3 trailing tokens can hold an unfinished one.
        while text.endswith("\ufffd") and n > max(0, real - 3):
            n -= 1
            text = tokenizer.decode(rows[i, :n], skip_special_tokens=True)
        texts[i] = text.rstrip("\ufffd")
    return [t.strip() for t in texts]
