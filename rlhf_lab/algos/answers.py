"""Prompt + answer batches for training on answers (DPO, SFT): the chat template around the prompt, the answer's
own tokens after it, and an explicit mask of the answer tokens, the only ones that carry a loss.

Prompt and answer are tokenized apart and joined (as TRL does), so the answer mask comes from the two
lengths and never from `ids != pad_token_id`; the model saw the same split when it sampled the answer (the
prompt's tokens, then its own). Rows are left-padded like every other pass in the lab, so every answer ends
in the last column and the answers of a batch share one right-aligned slice of the sequence.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..generation.chat import chat_text
from ..modeling.adapters import LabModels
from ..modeling.trunk import Trunk
from .rl_math import logprobs_from_logits

AnswerKey = tuple[str, str, bool]  # (prompt, answer, finished): a finished answer ends with EOS


def encode_answers(tokenizer, keys: Sequence[AnswerKey], device, max_prompt_length: int,
                   max_completion_length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded (input_ids, attention_mask, answer_mask), each (B, T), for (prompt, answer, finished) keys.

    The prompt keeps its last max_prompt_length tokens (the assistant tag stays next to the answer); the
    answer gets EOS when finished and keeps its first max_completion_length tokens, so an answer cut there
    ends without EOS, as an answer cut while sampling does.
    """
    rows, answer_lengths = [], []
    for prompt, answer, finished in keys:
        prompt_ids = tokenizer(chat_text(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if finished:
            answer_ids = answer_ids + [tokenizer.eos_token_id]
        answer_ids = answer_ids[:max_completion_length]
        rows.append(prompt_ids[-max_prompt_length:] + answer_ids)
        answer_lengths.append(len(answer_ids))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    answer_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, n) in enumerate(zip(rows, answer_lengths)):
        ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row):] = 1
        if n:
            answer_mask[i, width - n:] = 1
    return ids.to(device), mask.to(device), answer_mask.to(device)


class AnswerCache:
    """Each distinct answer encoded and run through the frozen trunk once per training run: every epoch, the
    reference pass and each evaluation then run only the adapted top layers. Stops adding past max_bytes."""

    def __init__(self, models: LabModels, max_prompt_length: int, max_completion_length: int,
                 max_bytes: int = 512 * 2**20):
        self.models, self.max_bytes, self.bytes = models, max_bytes, 0
        self.lengths = (max_prompt_length, max_completion_length)
        self.rows: dict[AnswerKey, tuple[Trunk, torch.Tensor]] = {}

    def _encode(self, keys: list[AnswerKey]) -> dict[AnswerKey, tuple[Trunk, torch.Tensor]]:
        ids, mask, answer_mask = encode_answers(self.models.tokenizer, keys, self.models.device, *self.lengths)
        trunks = self.models.trunk(ids, mask).unstack()
        return {k: (t, answer_mask[i, mask[i].bool()][None]) for i, (k, t) in enumerate(zip(keys, trunks))}

    def batch(self, keys: Sequence[AnswerKey]) -> tuple[Trunk, torch.Tensor]:
        """The keys' trunk, left-padded and stacked, and their answer mask (B, T) padded the same way."""
        missing = [k for k in dict.fromkeys(keys) if k not in self.rows]
        fresh = self._encode(missing) if missing else {}
        for key, row in fresh.items():
            size = 0 if row[0].hidden is None else row[0].hidden.numel() * row[0].hidden.element_size()
            if self.bytes + size <= self.max_bytes:
                self.rows[key] = row
                self.bytes += size
        rows = [self.rows.get(k) or fresh[k] for k in keys]
        trunk = Trunk.stack([r[0] for r in rows], self.models.tokenizer.pad_token_id)
        width = trunk.input_ids.shape[1]
        answer_mask = torch.cat([nn.functional.pad(r[1], (width - r[1].shape[1], 0)) for r in rows])
        return trunk, answer_mask


def answer_logps(models: LabModels, trunk: Trunk, answer_mask: torch.Tensor,
                 with_accuracy: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Log-probs (B, A) of the answer tokens under whichever adapter is active, their mask (B, A) and, if
    asked, whether each was the model's top choice (B, A). A is the longest answer of the batch.

    Answers are right-aligned (left padding), so only the last A positions go through the 49k-wide LM head:
    the state before each answer token predicts it.
    """
    T = trunk.input_ids.shape[1]
    A = int(answer_mask.sum(dim=1).max().item())
    assert A < T, "every row has at least one prompt token before its answer"
    hidden = models.hidden_from(trunk)[:, T - A - 1:T - 1]
    logits = models.logits(hidden)                                   # (B, A, V)
    targets = trunk.input_ids[:, T - A:]
    correct = (logits.argmax(dim=-1) == targets) if with_accuracy else None
    return logprobs_from_logits(logits, targets), answer_mask[:, T - A:].to(logits.dtype), correct
