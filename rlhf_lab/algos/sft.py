"""Supervised fine-tuning of the policy LoRA on demonstrations: answers a person (or a judge) wrote.

The loss is the mean negative log-likelihood of the answer tokens only (the chat-templated prompt carries
none), every demonstration ending with EOS: a written answer is a finished one. Demonstrations are split by
prompt like pairs; the held-out ones measure what SFT is for, their log-likelihood under the policy.
"""
from __future__ import annotations

import threading
from typing import Iterator

import torch

from .. import metrics as M
from ..config import SFTConfig
from ..data.pairs import Group, split_by_prompt
from ..errors import NoDemonstrations
from ..modeling.adapters import POLICY, LabModels
from .answers import AnswerCache, answer_logps
from .epochs import train_epochs
from .rl_math import masked_mean, sequence_logps


def _batch(models: LabModels, groups: list[Group], cache: AnswerCache):
    """Token log-probs (B, A), answer mask (B, A) and top-choice hits (B, A) of the groups' demonstrations."""
    return answer_logps(models, *cache.batch([(g.prompt, g.completions[0], True) for g in groups]),
                        with_accuracy=True)


@torch.no_grad()
def evaluate(models: LabModels, groups: list[Group], cache: AnswerCache, batch: int = 4) -> dict[str, float]:
    """Held-out SFT loss (per answer token), top-choice token accuracy and mean log-likelihood per answer."""
    nll, hits, tokens, answer_logps_total = 0.0, 0.0, 0.0, 0.0
    for start in range(0, len(groups), batch):
        logps, mask, correct = _batch(models, groups[start:start + batch], cache)
        nll -= (logps * mask).sum().item()
        hits += (correct * mask).sum().item()
        tokens += mask.sum().item()
        answer_logps_total += sequence_logps(logps, mask).sum().item()
    return {M.held_out(M.SFT_LOSS): nll / max(tokens, 1), M.held_out(M.TOKEN_ACCURACY): hits / max(tokens, 1),
            M.EVAL_DEMO_LOGPS: answer_logps_total / max(len(groups), 1)}


def train_sft(models: LabModels, examples: list[tuple[str, str]], cfg: SFTConfig,
              stop_event: threading.Event | None = None) -> Iterator[dict]:
    """Yield a metric row per optimizer step and a held-out row before training and after each epoch; the last
    row has "summary": True (see epochs.train_epochs). `examples` are (prompt, answer)."""
    if not examples:
        raise NoDemonstrations("SFT needs demonstrations and this session has none: write the answer you wanted "
                               "on a ranking card, or import a TRL SFT file.")
    # Group is the pairs' container: reusing it gives demonstrations the same split by prompt as pairs.
    train, held = split_by_prompt([Group(p, [a], [False]) for p, a in examples], cfg.eval_fraction)
    if not train:
        train, held = held, []
    models.use(POLICY)
    params = models.lora_params(POLICY)
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
    cache = AnswerCache(models, cfg.max_prompt_length, cfg.max_completion_length)

    def step_loss(batch: list[Group]):
        logps, mask, correct = _batch(models, batch, cache)
        loss = -masked_mean(logps, mask)  # mean over every answer token of the minibatch, as TRL's SFT
        return loss, {M.SFT_LOSS: loss.item(), M.TOKEN_ACCURACY: masked_mean(correct.float(), mask).item()}

    yield from train_epochs(train, cfg.batch_size, cfg.epochs, cfg.seed, params, optimizer, cfg.max_grad_norm,
                            step_loss, lambda: evaluate(models, held or train, cache, cfg.batch_size),
                            {"phase": "sft", "demonstrations_train": len(train), "demonstrations_eval": len(held),
                             "held_out": bool(held)},
                            "The SFT loss became NaN/inf; the policy was put back as it was before this run. "
                            "Lower the learning rate and run again.", stop_event)
