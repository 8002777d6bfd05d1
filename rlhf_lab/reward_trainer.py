"""Train the "reward" adapter and head on the session's pairs (Bradley-Terry), with a held-out split by prompt.

Each completion of a ranking is scored once per step and every pair of that ranking reads its two scores
from the same forward pass: a ranking of 4 needs 4 sequences, not 12, for its 6 pairs.
"""
from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch

from . import metrics as M
from .config import RewardConfig
from .core import bradley_terry_loss
from .generation import tokenize_pairs
from .models import REWARD, LabModels, Trunk
from .preferences import Pair


class NotEnoughPairs(ValueError):
    pass


@dataclass
class Group:
    """One prompt's completions and the (better, worse) index pairs among them."""
    prompt: str
    completions: list[str] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)


def groups_from_pairs(pairs: list[Pair]) -> list[Group]:
    """Group pairs by ranking (or by prompt for imported pairs), indexing each distinct completion once."""
    groups: dict[tuple[str, str], Group] = {}
    for p in pairs:
        g = groups.setdefault((p.ranking_id, p.prompt), Group(p.prompt))
        idx = []
        for text, cut in ((p.chosen, p.chosen_truncated), (p.rejected, p.rejected_truncated)):
            if text not in g.completions:
                g.completions.append(text)
                g.truncated.append(cut)
            idx.append(g.completions.index(text))
        g.pairs.append((idx[0], idx[1]))
    return list(groups.values())


def _prompt_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def split_by_prompt(groups: list[Group], eval_fraction: float) -> tuple[list[Group], list[Group]]:
    """Deterministic split: prompts ordered by hash, the first ceil(fraction * n) held out (at least one when
    there are two or more prompts). A prompt's groups always land on one side."""
    prompts = sorted({g.prompt for g in groups}, key=_prompt_key)
    n_eval = min(len(prompts) - 1, max(1, math.ceil(eval_fraction * len(prompts)))) if len(prompts) > 1 else 0
    held = set(prompts[:n_eval])
    return [g for g in groups if g.prompt not in held], [g for g in groups if g.prompt in held]


def count_pairs(groups: list[Group]) -> int:
    return sum(len(g.pairs) for g in groups)


class TrunkCache:
    """Each completion's trunk (the frozen bottom layers' output), computed once for the whole training run:
    every epoch and every evaluation then runs only the adapted top layers. Stops adding past max_bytes."""

    def __init__(self, models: LabModels, max_length: int, max_bytes: int = 512 * 2**20):
        self.models, self.max_length, self.max_bytes = models, max_length, max_bytes
        self.rows: dict[tuple, Trunk] = {}
        self.bytes = 0

    def batch(self, prompts: list[str], texts: list[str], cut: list[bool]) -> Trunk:
        keys = list(zip(prompts, texts, cut))
        missing = [k for k in dict.fromkeys(keys) if k not in self.rows]
        fresh = {}
        if missing:
            ids, mask = tokenize_pairs(self.models.tokenizer, [k[0] for k in missing], [k[1] for k in missing],
                                       self.models.device, self.max_length, [k[2] for k in missing])
            fresh = dict(zip(missing, self.models.trunk(ids, mask).unstack()))
            for key, row in fresh.items():
                size = 0 if row.hidden is None else row.hidden.numel() * row.hidden.element_size()
                if self.bytes + size <= self.max_bytes:
                    self.rows[key] = row
                    self.bytes += size
        return Trunk.stack([self.rows.get(k) or fresh[k] for k in keys], self.models.tokenizer.pad_token_id)


def _batch_scores(models: LabModels, groups: list[Group], cache: TrunkCache):
    """Score every completion of the groups in one forward; return (chosen, rejected) score tensors."""
    prompts = [g.prompt for g in groups for _ in g.completions]
    texts = [c for g in groups for c in g.completions]
    cut = [t for g in groups for t in g.truncated]
    scores = models.score_from(cache.batch(prompts, texts, cut))
    chosen, rejected, offset = [], [], 0
    for g in groups:
        for i, j in g.pairs:
            chosen.append(offset + i)
            rejected.append(offset + j)
        offset += len(g.completions)
    return scores[chosen], scores[rejected]


@torch.no_grad()
def evaluate(models: LabModels, groups: list[Group], cache: TrunkCache, batch: int = 4) -> dict:
    """Accuracy and mean margin over all pairs of the groups."""
    correct, margin, n = 0.0, 0.0, 0
    for start in range(0, len(groups), batch):
        c, r = _batch_scores(models, groups[start:start + batch], cache)
        correct += (c > r).float().sum().item()
        margin += (c - r).sum().item()
        n += c.numel()
    return {"accuracy": correct / max(n, 1), "margin": margin / max(n, 1), "pairs": n}


def _snapshot(models: LabModels) -> dict:
    params = {id(p): p.detach().clone() for p in models.adapter_params(REWARD)}
    head = {k: v.detach().clone() for k, v in models.reward_head.state_dict().items()}
    return {"params": params, "head": head}


def _restore(models: LabModels, snap: dict) -> None:
    with torch.no_grad():
        for p in models.adapter_params(REWARD):
            p.copy_(snap["params"][id(p)])
        models.reward_head.load_state_dict(snap["head"])


def train_reward_model(models: LabModels, pairs: list[Pair], cfg: RewardConfig,
                       stop_event: threading.Event | None = None) -> Iterator[dict]:
    """Yield a metric dict per optimizer step and per evaluation; the last yield has "summary": True.

    On stop or when the time budget runs out the best held-out state (or, before any evaluation, the
    starting state) is restored, so what stays in memory is always a model that was evaluated or untouched.
    """
    groups = groups_from_pairs(pairs)
    train, held = split_by_prompt(groups, cfg.eval_fraction)
    if count_pairs(groups) < 2:
        raise NotEnoughPairs(f"Only {count_pairs(groups)} usable pair(s): rank at least one more prompt "
                             "(rankings with ties only, 'all bad' and 'skip' give no pairs).")
    if not train:
        train, held = held, []
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    models.use(REWARD)
    params = models.adapter_params(REWARD) + list(models.reward_head.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
    start_state = _snapshot(models)
    cache = TrunkCache(models, cfg.max_length)
    epoch_acc: list[float] = []
    best, best_acc, bad_epochs, step = None, -1.0, 0, 0
    started = time.monotonic()
    stopped_by = None
    base_row = {"phase": "reward", "pairs_train": count_pairs(train), "pairs_eval": count_pairs(held)}

    def eval_row(epoch):
        nonlocal best, best_acc, bad_epochs
        result = evaluate(models, held or train, cache)
        improved = result["accuracy"] > best_acc
        if improved:
            best, best_acc, bad_epochs = _snapshot(models), result["accuracy"], 0
        else:
            bad_epochs += 1
        return {**base_row, "step": step, "epoch": epoch, M.EVAL_RM_ACCURACY: result["accuracy"],
                "eval/reward_margin": result["margin"], "time/elapsed_s": time.monotonic() - started}

    try:
        for epoch in range(cfg.epochs):
            order = train[:]
            rng.shuffle(order)
            epoch_acc = []
            for start in range(0, len(order), cfg.batch_rankings):
                if stop_event is not None and stop_event.is_set():
                    stopped_by = "stop"
                    break
                if time.monotonic() - started > cfg.max_seconds:
                    stopped_by = "time"
                    break
                t0 = time.monotonic()
                chosen, rejected = _batch_scores(models, order[start:start + cfg.batch_rankings], cache)
                loss, stats = bradley_terry_loss(chosen, rejected, cfg.margin, cfg.center_coef)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        "The reward-model loss became NaN/inf; the last good adapter was kept. "
                        "Lower the learning rate and train again.")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                step += 1
                epoch_acc.append(stats["accuracy"].item())
                yield {**base_row, "step": step, "epoch": epoch, M.RM_LOSS: loss.item(),
                       M.RM_ACCURACY: stats["accuracy"].item(), M.RM_MARGIN: stats["margin"].item(),
                       "time/step_s": time.monotonic() - t0, "progress": step / max(1, cfg.epochs * math.ceil(
                           len(order) / cfg.batch_rankings))}
            if stopped_by == "stop":
                break
            yield eval_row(epoch)
            if stopped_by or bad_epochs >= cfg.patience:
                break
    except BaseException:
        _restore(models, best or start_state)
        raise
    _restore(models, best or start_state)
    yield {**base_row, "summary": True, "step": step, "stopped": stopped_by, "trained": best is not None,
           M.EVAL_RM_ACCURACY: best_acc if best is not None else None,
           M.RM_ACCURACY: sum(epoch_acc) / len(epoch_acc) if epoch_acc else None,
           "seconds": round(time.monotonic() - started, 2), "held_out": bool(held)}
