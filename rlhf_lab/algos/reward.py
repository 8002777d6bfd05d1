"""Train the "reward" adapter and head on the session's pairs (Bradley-Terry), with a held-out split by prompt.

Each completion of a ranking is scored once per step and every pair of that ranking reads its two scores
from the same forward pass: a ranking of 4 needs 4 sequences, not 12, for its 6 pairs.
"""
from __future__ import annotations

import math
import random
import threading
import time
from typing import Iterator

import torch

from .. import metrics as M
from ..config import RewardConfig
from ..data.pairs import Group, Pair, count_pairs, groups_from_pairs, split_by_prompt
from ..errors import NotEnoughPairs, TrainingDiverged
from ..generation.chat import tokenize_scored
from ..modeling.adapters import REWARD, LabModels
from ..modeling.trunk import Trunk
from .rl_math import bradley_terry_loss
from .stats import LOSS_TOLERANCE, length_rule, r_squared, unselected_accuracy, wilson_interval


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
            ids, mask, answer = tokenize_scored(self.models.tokenizer, [k[0] for k in missing],
                                                [k[1] for k in missing], self.models.device, self.max_length,
                                                [k[2] for k in missing])
            fresh = dict(zip(missing, self.models.trunk(ids, mask, answer).unstack()))
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
    """Bradley-Terry loss, accuracy (ties in score count half) and mean margin over all pairs of the groups,
    and per prompt ("by_prompt": prompt -> (loss sum, correct, pairs)) for stats.unselected_accuracy."""
    margin, by_prompt = 0.0, {}
    for start in range(0, len(groups), batch):
        chunk = groups[start:start + batch]
        c, r = _batch_scores(models, chunk, cache)
        losses = torch.nn.functional.softplus(r - c)  # -log sigmoid(c - r)
        right = (c > r).float() + 0.5 * (c == r).float()
        margin += (c - r).sum().item()
        offset = 0
        for g in chunk:
            k = len(g.pairs)
            loss, correct, n = by_prompt.get(g.prompt, (0.0, 0.0, 0))
            by_prompt[g.prompt] = (loss + losses[offset:offset + k].sum().item(),
                                   correct + right[offset:offset + k].sum().item(), n + k)
            offset += k
    loss, correct, n = (sum(v[i] for v in by_prompt.values()) for i in range(3))
    return {"loss": loss / max(n, 1), "accuracy": correct / max(n, 1), "margin": margin / max(n, 1), "pairs": n,
            "correct": correct, "by_prompt": by_prompt}


def _token_lengths(models: LabModels, groups: list[Group]) -> list[list[int]]:
    return [[len(models.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in g.completions] for g in groups]


@torch.no_grad()
def _group_scores(models: LabModels, groups: list[Group], cache: TrunkCache) -> list[list[float]]:
    """The reward of every answer, group by group (four groups per forward)."""
    out = []
    for start in range(0, len(groups), 4):
        chunk = groups[start:start + 4]
        prompts = [g.prompt for g in chunk for _ in g.completions]
        texts = [c for g in chunk for c in g.completions]
        cut = [t for g in chunk for t in g.truncated]
        flat = iter(models.score_from(cache.batch(prompts, texts, cut)).tolist())
        out += [[next(flat) for _ in g.completions] for g in chunk]
    return out


def _pair_values(groups: list[Group], per_answer: list[list]) -> list[tuple]:
    """(chosen's, rejected's) value for every pair of the groups, from per-answer values group by group."""
    return [(values[i], values[j]) for g, values in zip(groups, per_answer) for i, j in g.pairs]


def length_checks(models: LabModels, train: list[Group], held: list[Group], cache: TrunkCache) -> dict:
    """How much of the reward is answer length, scoring each answer once.

    reward/length_r2: R^2 of the reward against length (tokens) over the held-out answers (the training ones
    if nothing is held out); near 1 means the model mostly measures length, whatever the person ranked for.
    With a held-out set, also how the model does where length cannot help: the held-out pairs that "prefer
    the longer (or, if the training pairs lean that way, the shorter) answer" gets wrong. A model that
    learned only length is right on none of them; one that reads what the person ranked for is right on most.
    """
    scored = held or train
    scores, lengths = _group_scores(models, scored, cache), _token_lengths(models, scored)
    out = {M.RM_LENGTH_R2: r_squared([n for row in lengths for n in row], [x for row in scores for x in row])}
    if not held:
        return out
    rule = length_rule(_pair_values(train, _token_lengths(models, train)), _pair_values(held, lengths))
    margins = [c - r for c, r in _pair_values(held, scores)]
    against = [margins[i] for i in rule["against"]]
    correct = sum(1.0 if m > 0 else 0.5 if m == 0 else 0.0 for m in against)
    return {**out, M.EVAL_LENGTH_RULE_ACCURACY: rule["accuracy"], "pairs_against_length": len(against),
            M.EVAL_RM_ACCURACY_AGAINST_LENGTH: correct / len(against) if against else None,
            "eval/against_length_ci": list(wilson_interval(correct, len(against))) if against else None,
            "length_rule": "longer" if rule["longer_wins"] else "shorter"}


def train_reward_model(models: LabModels, pairs: list[Pair], cfg: RewardConfig,
                       stop_event: threading.Event | None = None) -> Iterator[dict]:
    """Yield a metric dict per optimizer step and per epoch's evaluation; the last yield has "summary": True.

    Training stops after cfg.epochs, or earlier when the held-out loss has not improved for cfg.patience
    epochs (or on the optional cfg.max_seconds budget), so a slow CPU gets the same model as a fast one. The
    state with the lowest held-out loss is kept. On stop the best evaluated state (or, before any
    evaluation, the starting state) is restored: what stays in memory was evaluated or is untouched.
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
    params = models.trainable_params(REWARD)
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
    start_state = models.snapshot(REWARD)
    cache = TrunkCache(models, cfg.max_length)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_rankings)
    total_steps = cfg.epochs * steps_per_epoch
    epoch_acc: list[float] = []
    best, best_loss, best_eval, bad_epochs, step = None, math.inf, None, 0, 0
    history: list[dict] = []  # each held-out evaluation, per prompt
    started = time.monotonic()
    stopped_by = None
    base_row = {"phase": "reward", "pairs_train": count_pairs(train), "pairs_eval": count_pairs(held)}

    def eval_row(epoch):
        nonlocal best, best_loss, best_eval, bad_epochs
        result = evaluate(models, held or train, cache)
        history.append(result["by_prompt"])
        if result["loss"] < best_loss - LOSS_TOLERANCE:
            best, best_loss, best_eval, bad_epochs = models.snapshot(REWARD), result["loss"], result, 0
        else:
            bad_epochs += 1
        return {**base_row, "step": step, "epoch": epoch, M.EVAL_RM_ACCURACY: result["accuracy"],
                M.EVAL_RM_LOSS: result["loss"], "eval/reward_margin": result["margin"],
                "time/elapsed_s": time.monotonic() - started}

    epochs_run = 0  # epochs with at least one step (the last may be partial)
    try:
        for epoch in range(cfg.epochs):
            order = train[:]
            rng.shuffle(order)
            accs = []
            for start in range(0, len(order), cfg.batch_rankings):
                if stop_event is not None and stop_event.is_set():
                    stopped_by = "stop"
                    break
                if cfg.max_seconds is not None and time.monotonic() - started > cfg.max_seconds:
                    stopped_by = "time"
                    break
                t0 = time.monotonic()
                chosen, rejected = _batch_scores(models, order[start:start + cfg.batch_rankings], cache)
                loss, stats = bradley_terry_loss(chosen, rejected, cfg.margin, cfg.center_coef)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        "The reward-model loss became NaN/inf; the last good adapter was kept. "
                        "Lower the learning rate and train again.")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                step += 1
                accs.append(stats["accuracy"].item())
                elapsed = time.monotonic() - started
                eta = elapsed / step * (total_steps - step)
                if cfg.max_seconds is not None:
                    eta = min(eta, max(0.0, cfg.max_seconds - elapsed))
                yield {**base_row, "step": step, "epoch": epoch, M.RM_LOSS: loss.item(),
                       M.RM_ACCURACY: stats["accuracy"].item(), M.RM_MARGIN: stats["margin"].item(),
                       "time/step_s": time.monotonic() - t0, "progress": step / total_steps, "eta_s": eta}
            if accs:
                epoch_acc, epochs_run = accs, epoch + 1
            if stopped_by == "stop" or not accs:  # a Stop, or the budget ran out before this epoch's first step:
                break                              # nothing new to evaluate
            yield eval_row(epoch)
            if stopped_by or bad_epochs >= cfg.patience:
                break
    except BaseException:
        models.restore(REWARD, best or start_state)
        raise
    models.restore(REWARD, best or start_state)
    lengths = length_checks(models, train, held, cache) if best is not None else {M.RM_LENGTH_R2: None}
    low, high = (wilson_interval(best_eval["correct"], best_eval["pairs"]) if best_eval else (None, None))
    yield {**base_row, "summary": True, "step": step, "stopped": stopped_by, "trained": best is not None,
           "epochs": epochs_run, "epochs_max": cfg.epochs, "max_seconds": cfg.max_seconds,
           M.EVAL_RM_ACCURACY: best_eval["accuracy"] if best_eval else None,
           M.EVAL_RM_LOSS: best_loss if best is not None else None,
           "eval/accuracy_ci": [low, high] if best_eval else None,
           M.EVAL_RM_ACCURACY_LOPO: unselected_accuracy(history) if held and best_eval else None,
           M.RM_ACCURACY: sum(epoch_acc) / len(epoch_acc) if epoch_acc else None,
           **lengths,
           "seconds": round(time.monotonic() - started, 2), "held_out": bool(held),
           "readout": models.readouts.get(REWARD)}  # a continued model keeps its saved read-out
