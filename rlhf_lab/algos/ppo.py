"""One PPO update of the 4-bit policy against the reward model, in the order of CleanRL's ppo.py.

The policy is the "policy" LoRA adapter, the reference is the same base with adapters disabled, the value
head reads the policy's hidden states and the reward is the "reward" adapter's head, read where its read-out
looks (modeling/readout.py: the response's tokens and its last one). The reward enters at the last real token.
Only the policy adapter and the value head receive gradients.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .. import metrics as M
from ..config import PPOConfig
from ..errors import Stopped
from ..generation.decode import Rollout
from ..generation.sampling import sample
from ..modeling.adapters import POLICY, LabModels
from ..modeling.trunk import Trunk
from .rl_math import (AdaptiveKLController, FixedKLController, entropy_from_logits, gae, kl_per_token,
                      leave_one_out_baseline, logprobs_from_logits, masked_mean, masked_whiten, policy_loss, shaped_rewards, value_loss)


class PastKLLimit(Exception):
    """A step's rollouts were past cfg.max_kl: nothing was trained on them. `kl` is their batch mean (k3)."""

    def __init__(self, kl: float, limit: float):
        super().__init__(f"KL {kl:.2f} nats is past the limit {limit:g}")
        self.kl, self.limit = kl, limit


@dataclass
class PPOState:
    """What persists between steps of one run: optimizer moments, the KL controller, the step counter."""
    optimizer: torch.optim.Optimizer
    kl_ctl: AdaptiveKLController | FixedKLController
    step: int = 0


def new_state(models: LabModels, cfg: PPOConfig, kl_coef: float | None = None, step: int = 0) -> PPOState:
    models.use(POLICY)
    optimizer = torch.optim.AdamW(models.trainable_params(POLICY), lr=cfg.learning_rate, eps=1e-5, weight_decay=0.0)
    beta = cfg.kl_coef if kl_coef is None else kl_coef
    kl_ctl = (AdaptiveKLController(beta, cfg.target_kl, cfg.kl_horizon) if cfg.adaptive_kl
              else FixedKLController(beta))
    return PPOState(optimizer, kl_ctl, step)


def policy_forward(models: LabModels, rollout: Rollout, trunk: Trunk, rows: torch.Tensor, temperature: float,
                   with_entropy: bool = False):
    """Log-probs (b, T) of the sampled tokens and values (b, T) of the states that emitted them.

    `trunk` is the rollout after the frozen bottom layers (models.trunk), computed once per step: only the
    top layers run here. Only response positions go through the 49k-wide LM head.
    """
    P, T = rollout.query_ids.shape[1], rollout.response_ids.shape[1]
    hidden = models.hidden_from(trunk.select(rows))[:, P - 1:P - 1 + T]  # state before each response token
    logits = models.logits(hidden)
    if temperature != 1.0:  # a (b, T, V) division and its backward: skip it when it is a no-op
        logits = logits / temperature
    logprobs = logprobs_from_logits(logits, rollout.response_ids[rows])
    values = models.value_head(hidden.float()).squeeze(-1)
    entropy = entropy_from_logits(logits) if with_entropy else None
    return logprobs, values, entropy


def ppo_step(models: LabModels, prompts: list[str], cfg: PPOConfig, state: PPOState,
             stop_event: threading.Event | None = None, seed: int | None = None,
             scorer: Callable[[Rollout], torch.Tensor] | None = None,
             gold: Callable[[str, str], float] | None = None,
             on_phase: Callable[[str, float], None] | None = None) -> tuple[dict, list[dict]]:
    """Run one PPO update on len(prompts) rollouts. Returns (metrics, samples for display).

    `scorer` replaces the reward model (a rule-based judge in demos and tests): rollout -> scores (B,).
    `gold` (prompt, answer) -> float is the judge that ranked the session, if one did: its score of the same
    samples is logged beside the reward model's (gold vs proxy) and never trained on.
    `on_phase` (what, fraction of the step done) is told where the step is, for progress within a step.
    Raises PastKLLimit, before any update, when the rollouts' KL is past cfg.max_kl.
    """
    phase = on_phase or (lambda _what, _fraction: None)
    t_start = time.monotonic()
    models.use(POLICY)
    B = len(prompts)

    # 1. Rollout: sample one response per prompt from the current policy (top_p=1: the true distribution).
    phase(f"sampling {B} answers", 0.0)
    rollout = sample(models, prompts, cfg.max_new_tokens, cfg.temperature, top_p=1.0, seed=seed, adapter=POLICY,
                     capture=True, stop_event=stop_event)
    t_generate = time.monotonic() - t_start
    mask = rollout.response_mask.float()                                   # (B, T)
    all_rows = torch.arange(B, device=mask.device)

    phase("scoring with the reward model and the reference", 0.5)
    with torch.no_grad():
        # The frozen bottom layers' output, kept while sampling: the reward model, the reference and every
        # policy pass below share it and run only the adapted top layers.
        trunk = models.rollout_trunk(rollout)
        # 2. Score: the reward model over the response (its read-out); answers cut without EOS pay a penalty.
        scores = (scorer(rollout) if scorer is not None else models.score_from(trunk)).float()   # (B,)
        scores = scores - cfg.missing_eos_penalty * rollout.truncated.float()
        centred = scores
        if cfg.score_baseline:
            groups = torch.tensor([prompts.index(p) for p in prompts], device=scores.device)
            centred = scores - leave_one_out_baseline(scores, groups)
        # 3. Reference log-probs: the same base with adapters disabled.
        with models.reference():
            ref_logprobs, _, _ = policy_forward(models, rollout, trunk, all_rows, cfg.temperature)
        # 4. Old log-probs and values from the policy that sampled.
        old_logprobs, old_values, entropy = policy_forward(models, rollout, trunk, all_rows, cfg.temperature,
                                                           with_entropy=True)
        # 5. Rewards: -kl_coef * KL per token, the score less its baseline at the last real token.
        kl = kl_per_token(old_logprobs, ref_logprobs, cfg.kl_estimator) * mask             # (B, T)
        # What is plotted and steers kl_coef: k3, never negative and lower in variance than k1, whose
        # batch mean read -0.12 nats on 8 short rollouts of a barely moved policy.
        seq_kl_k3 = (kl_per_token(old_logprobs, ref_logprobs, "k3") * mask).sum(dim=1)   # (B,)
        seq_kl_k1 = (kl_per_token(old_logprobs, ref_logprobs, "k1") * mask).sum(dim=1)   # (B,)
        batch_kl = seq_kl_k3.mean().item()
        if cfg.max_kl and batch_kl > cfg.max_kl:
            raise PastKLLimit(batch_kl, cfg.max_kl)
        kl_coef = state.kl_ctl.value
        rewards = shaped_rewards(centred, kl, mask, kl_coef)
        if cfg.whiten_rewards:
            rewards = masked_whiten(rewards, mask, shift_mean=False)
        # 6. Advantages and returns by GAE; advantages whitened over the batch.
        advantages, returns = gae(rewards, old_values * mask, mask, cfg.gamma, cfg.lam)
        advantages = masked_whiten(advantages, mask)

    # 7. Optimise: num_ppo_epochs passes over shuffled minibatches.
    params = models.trainable_params(POLICY)
    stats = {"pg_loss": [], "vf_loss": [], "clipfrac": [], "approxkl": [], "ratio": [], "vf_clipfrac": []}
    skipped = 0
    for epoch in range(cfg.num_ppo_epochs):
        phase(f"optimising: epoch {epoch + 1} of {cfg.num_ppo_epochs}", 0.6 + 0.4 * epoch / cfg.num_ppo_epochs)
        b_inds = torch.randperm(B, device=mask.device)
        for start in range(0, B, cfg.mini_batch_size):
            if stop_event is not None and stop_event.is_set():
                raise Stopped("PPO stopped")
            mb = b_inds[start:start + cfg.mini_batch_size]
            mb_mask = mask[mb]
            new_logprobs, new_values, _ = policy_forward(models, rollout, trunk, mb, cfg.temperature)
            pg_loss, pg_stats = policy_loss(new_logprobs, old_logprobs[mb], advantages[mb], mb_mask, cfg.cliprange)
            vf_loss, vf_stats = value_loss(new_values, old_values[mb], returns[mb], mb_mask, cfg.cliprange_value)
            if pg_stats["ratio"].item() > cfg.ratio_threshold or not torch.isfinite(pg_loss + vf_loss):
                skipped += 1  # ratio guard: a diverged minibatch would wreck the adapter; skip and log it
                continue
            loss = pg_loss + cfg.vf_coef * vf_loss
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            state.optimizer.step()
            for key, value in (("pg_loss", pg_loss), ("vf_loss", vf_loss), ("clipfrac", pg_stats["clipfrac"]),
                               ("approxkl", pg_stats["approxkl"]), ("ratio", pg_stats["ratio"]),
                               ("vf_clipfrac", vf_stats["clipfrac"])):
                stats[key].append(value.item())

    # 8. Adapt the KL coefficient towards the target and report.
    non_score = (-kl_coef * kl).sum(dim=1)                                  # (B,)
    state.kl_ctl.update(batch_kl, B)
    state.step += 1

    def avg(key):
        return sum(stats[key]) / len(stats[key]) if stats[key] else float("nan")

    row = {"phase": "ppo", "step": state.step,
           M.SCORES: scores.mean().item(), M.KL: batch_kl, M.KL_K1: seq_kl_k1.mean().item(),
           M.KL_COEF: kl_coef,
           M.NON_SCORE_REWARD: non_score.mean().item(), M.RLHF_REWARD: (scores + non_score).mean().item(),
           M.ENTROPY: masked_mean(entropy, mask).item(),
           M.APPROXKL: avg("approxkl"), M.CLIPFRAC: avg("clipfrac"), M.POLICY_LOSS: avg("pg_loss"),
           M.VALUE_LOSS: avg("vf_loss"), M.RATIO: avg("ratio"), M.VF_CLIPFRAC: avg("vf_clipfrac"),
           "policy/skipped_minibatches": skipped, M.LENGTH: rollout.response_lengths.float().mean().item(),
           M.FINISHED: 1.0 - rollout.truncated.float().mean().item(),
           "time/generate_s": t_generate, "time/step_s": time.monotonic() - t_start}
    if gold is not None:
        gold_scores = [float(gold(p, t)) for p, t in zip(rollout.prompts, rollout.texts)]
        row[M.GOLD_SCORES] = sum(gold_scores) / len(gold_scores)
    samples = [{"step": state.step, "prompt": p, "completion": t, "score": round(s, 3)}
               for p, t, s in zip(rollout.prompts, rollout.texts, scores.tolist())]
    return row, samples
