"""Prompts as the model sees them: the chat template, prompt checks against the context, reward-model inputs."""
from __future__ import annotations

from typing import Sequence

import torch

from ..errors import ConfigError


def chat_text(tokenizer, prompt: str) -> str:
    """The model's chat template around a user prompt, or the raw prompt for base models.

    The session's system prompt rides on the tokenizer (`lab_system_prompt`, set when the model loads), so
    sampling, reward scoring and PPO all see exactly the same template; None keeps the model's own default.
    """
    if getattr(tokenizer, "chat_template", None):
        system = getattr(tokenizer, "lab_system_prompt", None)
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
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


# Longest prompt accepted for sampling, checked before tokenizing so a pasted book is refused at once. The
# reward model reads only the last RewardConfig.max_length (160) tokens of prompt + answer, and on a 2-core
# CPU every prompt token slows each decode step: ~2,000 characters (~500 tokens) keeps both sensible.
MAX_PROMPT_CHARS = 2000


def check_prompt(tokenizer, model, prompt: str, max_new_tokens: int) -> str:
    """Validate one prompt; return it stripped, or raise ConfigError saying what is wrong."""
    prompt = require_prompt(prompt)
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ConfigError(f"The prompt is {len(prompt):,} characters; the lab takes at most {MAX_PROMPT_CHARS:,} "
                          "(a small model answers short questions best). Shorten it to a question or a paragraph.")
    n = len(tokenizer(chat_text(tokenizer, prompt), add_special_tokens=False)["input_ids"])
    ctx = context_length(model)
    if n + max_new_tokens > ctx:
        raise ConfigError(f"The prompt is {n} tokens; with max_new_tokens={max_new_tokens} that exceeds the "
                          f"model's context of {ctx} tokens (answers need room after the prompt). Shorten the "
                          f"prompt or lower max_new_tokens.")
    return prompt


def tokenize_pairs(tokenizer, prompts: Sequence[str], completions: Sequence[str], device,
                   max_length: int = 0, truncated: Sequence[bool] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Chat prompt + completion (+ EOS unless it was cut off), left-padded, for the reward model: (B, T).

    A completion cut at max_new_tokens gets no EOS, exactly as PPO's rollouts present it to the reward model.
    When max_length is set, longer sequences keep their last max_length tokens: the reward is read at the end.
    """
    ids, mask, _ = tokenize_scored(tokenizer, prompts, completions, device, max_length, truncated)
    return ids, mask


def tokenize_scored(tokenizer, prompts: Sequence[str], completions: Sequence[str], device, max_length: int = 0,
                    truncated: Sequence[bool] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """tokenize_pairs, and a (B, T) mask of each row's answer tokens (its EOS included), as PPO's rollouts mark
    their response: the tokens past the chat prompt's own tokenization."""
    eos = tokenizer.eos_token or ""
    cut = truncated or [False] * len(completions)
    heads = [chat_text(tokenizer, p) for p in prompts]
    prompt_len = {h: len(tokenizer(h, add_special_tokens=False)["input_ids"]) for h in dict.fromkeys(heads)}
    rows = [tokenizer(h + c + ("" if t else eos), add_special_tokens=False)["input_ids"]
            for h, c, t in zip(heads, completions, cut)]
    answer = [len(r) - prompt_len[h] for r, h in zip(rows, heads)]
    if max_length:
        rows = [r[-max_length:] for r in rows]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    answer_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, n) in enumerate(zip(rows, answer)):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
        answer_mask[i, width - min(max(n, 1), len(r)):] = 1  # an empty answer still has its EOS (or last token)
    return ids.to(device), mask.to(device), answer_mask.to(device)
