"""DPO (Rafailov et al. 2023) of the policy LoRA on the session's pairs: no reward model, no sampling.

The policy is the "policy" adapter; the reference is the same base with adapters disabled, so its log-probs
never change and are computed once, before the first step. Pairs are grouped by ranking as for the reward
model (data/pairs.py) and split by prompt with the reward model's held-out share, so DPO is measured on the
prompts the reward model never saw either. Each answer of a ranking is scored once per step and every pair
of that ranking reads its two log-probs from that pass. Only the policy's LoRA weights receive gradients.
"""
from __future__ import annotations

import threading
from typing import Iterator

import torch

from .. import metrics as M
from ..config import DPOConfig
from ..data.pairs import Group, Pair, count_pairs, groups_from_pairs, split_by_prompt
from ..errors import NotEnoughPairs, Stopped
from ..modeling.adapters import POLICY, LabModels
from .answers import AnswerCache, AnswerKey, answer_logps
from .epochs import train_epochs
from .rl_math import dpo_loss, sequence_logps


def group_keys(groups: list[Group]) -> tuple[list[AnswerKey], list[int], list[int]]:
    """Every answer of the groups once, in order, and the (chosen, rejected) index of each of their pairs."""
    keys, chosen, rejected = [], [], []
    for g in groups:
        offset = len(keys)
        keys += [(g.prompt, text, not cut) for text, cut in zip(g.completions, g.truncated)]
        chosen += [offset + i for i, _ in g.pairs]
        rejected += [offset + j for _, j in g.pairs]
    return keys, chosen, rejected


def policy_logps(models: LabModels, keys: list[AnswerKey], cache: AnswerCache, average: bool) -> torch.Tensor:
    """Log-prob (N,) of each answer under the active adapter (sum over its tokens, or mean for IPO)."""
    trunk, answer_mask = cache.batch(keys)
    token_logps, mask, _ = answer_logps(models, trunk, answer_mask)
    return sequence_logps(token_logps, mask, average)


@torch.no_grad()
def reference_logps(models: LabModels, groups: list[Group], cache: AnswerCache, average: bool, batch: int = 4,
                    stop_event: threading.Event | None = None) -> dict[AnswerKey, float]:
    """Every answer's log-prob under the reference (adapters off), computed once for the whole run. A stop
    asked for meanwhile raises Stopped: nothing has been trained yet."""
    out: dict[AnswerKey, float] = {}
    with models.reference():
        for start in range(0, len(groups), batch):
            if stop_event is not None and stop_event.is_set():
                raise Stopped("DPO stopped before its first step")
            keys = list(dict.fromkeys(group_keys(groups[start:start + batch])[0]))
            out.update(zip(keys, policy_logps(models, keys, cache, average).tolist()))
    return out


def pair_loss(models: LabModels, groups: list[Group], ref: dict[AnswerKey, float], cache: AnswerCache,
              cfg: DPOConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """dpo_loss over every pair of the groups: one policy pass over their answers."""
    keys, chosen, rejected = group_keys(groups)
    logps = policy_logps(models, keys, cache, cfg.average_logps)
    ref_logps = torch.tensor([ref[k] for k in keys], dtype=logps.dtype, device=logps.device)
    return dpo_loss(logps[chosen], logps[rejected], ref_logps[chosen], ref_logps[rejected], cfg.beta, cfg.loss_type)


@torch.no_grad()
def evaluate(models: LabModels, groups: list[Group], ref: dict[AnswerKey, float], cache: AnswerCache,
             cfg: DPOConfig) -> dict[str, float]:
    """The DPO loss and TRL's reward metrics over every pair of the groups, named eval/<metric>."""
    parts = {"c": [], "r": [], "ref_c": [], "ref_r": []}
    for start in range(0, len(groups), cfg.batch_rankings):
        keys, chosen, rejected = group_keys(groups[start:start + cfg.batch_rankings])
        logps = policy_logps(models, keys, cache, cfg.average_logps)
        ref_logps = torch.tensor([ref[k] for k in keys], dtype=logps.dtype, device=logps.device)
        for name, part in (("c", logps[chosen]), ("r", logps[rejected]), ("ref_c", ref_logps[chosen]),
                           ("ref_r", ref_logps[rejected])):
            parts[name].append(part)
    loss, stats = dpo_loss(*(torch.cat(parts[k]) for k in ("c", "r", "ref_c", "ref_r")), cfg.beta, cfg.loss_type)
    return {M.held_out(M.DPO_LOSS): loss.item(), **{M.held_out(k): v.item() for k, v in stats.items()}}


def train_dpo(models: LabModels, pairs: list[Pair], cfg: DPOConfig,
              stop_event: threading.Event | None = None) -> Iterator[dict]:
    """Yield a metric row per optimizer step and a held-out row before training and after each epoch; the
    last row has "summary": True (see epochs.train_epochs)."""
    groups = groups_from_pairs(pairs)
    if count_pairs(groups) < 1:
        raise NotEnoughPairs("DPO needs preference pairs and this session has none: rank some answers (or write "
                             "the answer you wanted on a ranking card) first.")
    train, held = split_by_prompt(groups, cfg.eval_fraction)
    if not train:
        train, held = held, []
    models.use(POLICY)
    params = models.lora_params(POLICY)  # not the value head: DPO has no use for it
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
    cache = AnswerCache(models, cfg.max_prompt_length, cfg.max_completion_length)
    # 1. Reference log-probs of every answer, once: the reference (adapters off) never changes.
    ref = reference_logps(models, groups, cache, cfg.average_logps, stop_event=stop_event)

    # 2. One step on a minibatch of rankings: every pair of them at once.
    def step_loss(batch: list[Group]):
        loss, stats = pair_loss(models, batch, ref, cache, cfg)
        return loss, {M.DPO_LOSS: loss.item(), **{k: v.item() for k, v in stats.items()}}

    # 3. Held-out pairs before the first step and after each epoch (all pairs if no prompt could be held out).
    yield from train_epochs(train, cfg.batch_rankings, cfg.epochs, cfg.seed, params, optimizer, cfg.max_grad_norm,
                            step_loss, lambda: evaluate(models, held or train, ref, cache, cfg),
                            {"phase": "dpo", "pairs_train": count_pairs(train), "pairs_eval": count_pairs(held),
                             "held_out": bool(held)},
                            "The DPO loss became NaN/inf; the policy was put back as it was before this run. "
                            "Lower the learning rate (or raise beta) and run again.", stop_event)
