"""Sample completions: one batched generate call, explicit attention and response masks.

Masks are never rebuilt from `ids != pad_token_id`: SmolLM2 (like many small models) uses the same id for
padding and end-of-sequence, so that test would hide every EOS.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .config import ConfigError


class Stopped(Exception):
    """A cooperative stop was requested while a job ran."""


@dataclass
class Rollout:
    prompts: list[str]          # (B,) the prompt text of each row
    query_ids: torch.Tensor     # (B, P) left-padded prompt tokens
    query_mask: torch.Tensor    # (B, P) 1 on real prompt tokens
    response_ids: torch.Tensor  # (B, R) sampled tokens, padded after the end
    response_mask: torch.Tensor  # (B, R) 1 on response tokens up to and including the first EOS
    texts: list[str]            # (B,) decoded responses without special tokens
    truncated: torch.Tensor     # (B,) True where max_new_tokens was reached without EOS

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.query_ids, self.response_ids], dim=1)

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.query_mask, self.response_mask], dim=1)

    @property
    def response_lengths(self) -> torch.Tensor:
        return self.response_mask.sum(dim=1)


def chat_text(tokenizer, prompt: str) -> str:
    """The model's chat template around a user prompt, or the raw prompt for base models."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    return prompt


def context_length(model) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(getattr(config, "max_position_embeddings", 2048) or 2048)


def encode_prompts(tokenizer, prompts: Sequence[str], device) -> tuple[torch.Tensor, torch.Tensor]:
    texts = [chat_text(tokenizer, p) for p in prompts]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    return enc["input_ids"].to(device), enc["attention_mask"].to(device)


def require_prompt(prompt) -> str:
    """The prompt stripped, or ConfigError if there is nothing in it (checked before any model is needed)."""
    if prompt is None or not str(prompt).strip():
        raise ConfigError("The prompt is empty: type a question (in the app, or press 'Random prompt').")
    return str(prompt).strip()


def check_prompt(tokenizer, model, prompt: str, max_new_tokens: int) -> str:
    """Validate one prompt; return it stripped, or raise ConfigError saying what is wrong."""
    prompt = require_prompt(prompt)
    n = len(tokenizer(chat_text(tokenizer, prompt), add_special_tokens=False)["input_ids"])
    ctx = context_length(model)
    if n + max_new_tokens > ctx:
        raise ConfigError(f"The prompt is {n} tokens; with max_new_tokens={max_new_tokens} that exceeds the "
                          f"model's context of {ctx} tokens. Shorten the prompt or the answers.")
    return prompt


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


class _StepWatch:
    """A stopping criterion that reports progress each step and honours a stop event."""

    def __init__(self, prompt_len: int, on_step, stop_event):
        self.prompt_len, self.on_step, self.stop_event = prompt_len, on_step, stop_event
        self.stopped = False

    def __call__(self, input_ids, scores, **kwargs):
        if self.on_step is not None:
            self.on_step(input_ids[:, self.prompt_len:])
        if self.stop_event is not None and self.stop_event.is_set():
            self.stopped = True
            return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int, temperature: float, top_p: float,
             seed: int | None = None, on_step: Callable[[torch.Tensor], None] | None = None,
             stop_event: threading.Event | None = None) -> Rollout:
    """Sample one completion per entry of `prompts` (repeat a prompt K times for K completions)."""
    from transformers import StoppingCriteriaList

    device = next(model.parameters()).device
    query_ids, query_mask = encode_prompts(tokenizer, prompts, device)
    ctx = context_length(model)
    max_new_tokens = max(1, min(max_new_tokens, ctx - query_ids.shape[1]))
    if seed is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    eos = eos_token_ids(tokenizer, model)
    watch = _StepWatch(query_ids.shape[1], on_step, stop_event)
    was_training = model.training
    model.eval()
    out = model.generate(input_ids=query_ids, attention_mask=query_mask, do_sample=True, temperature=temperature,
                         top_p=top_p, top_k=0, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=sorted(eos), stopping_criteria=StoppingCriteriaList([watch]))
    model.train(was_training)
    if watch.stopped:
        raise Stopped("generation stopped")
    response_ids = out[:, query_ids.shape[1]:]
    response_mask, truncated = response_mask_from(response_ids, eos)
    response_ids = response_ids.masked_fill(response_mask == 0, tokenizer.pad_token_id)
    texts = tokenizer.batch_decode(response_ids, skip_special_tokens=True)
    return Rollout(list(prompts), query_ids, query_mask, response_ids, response_mask,
                   [t.strip() for t in texts], truncated)


def decode_partial(tokenizer, partial: torch.Tensor, eos: set[int]) -> list[str]:
    """Texts so far for a (B, t) tensor of new tokens, cut at each row's first EOS."""
    mask, _ = response_mask_from(partial, eos)
    return [t.strip() for t in tokenizer.batch_decode(partial.masked_fill(mask == 0, next(iter(eos))),
                                                      skip_special_tokens=True)]


def tokenize_pairs(tokenizer, prompts: Sequence[str], completions: Sequence[str], device,
                   max_length: int = 0, truncated: Sequence[bool] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Chat prompt + completion (+ EOS unless it was cut off), left-padded, for the reward model: (B, T).

    A completion cut at max_new_tokens gets no EOS, exactly as PPO's rollouts present it to the reward model.
    When max_length is set, longer sequences keep their last max_length tokens: the reward is read at the end.
    """
    eos = tokenizer.eos_token or ""
    cut = truncated or [False] * len(completions)
    texts = [chat_text(tokenizer, p) + c + ("" if t else eos) for p, c, t in zip(prompts, completions, cut)]
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    if max_length:
        rows = [r[-max_length:] for r in rows]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    return ids.to(device), mask.to(device)
