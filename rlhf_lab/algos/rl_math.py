"""Pure tensor math for RLHF: log-probs, masked statistics, KL estimators, GAE, PPO, Bradley-Terry and DPO losses.

Shapes: B = batch, T = response length, V = vocabulary. `mask` is 1.0 on real response tokens.
Every function is side-effect free and unit-tested against hand-computed numbers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import metrics as M


# ---- log-probs and entropy -----------------------------------------------------------------------------------

def logprobs_from_logits(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Log-prob of each taken token. logits: (B, T, V), tokens: (B, T) -> (B, T).

    log p(x) = logit[x] - logsumexp(logits): no (B, T, V) softmax copy is kept.
    """
    taken = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return taken - torch.logsumexp(logits, dim=-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each position's distribution. logits: (B, T, V) -> (B, T)."""
    logp = F.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


# ---- masked statistics ---------------------------------------------------------------------------------------

def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of x over positions where mask is 1 (all of them, or along dim)."""
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of x over masked positions (Bessel-corrected when unbiased and more than one value)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    n = mask.sum()
    if unbiased and n > 1:
        var = var * n / (n - 1)
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """(x - mean) / std over masked positions; with shift_mean=False the mean is added back."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    whitened = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask.to(x.dtype)


# ---- KL to the reference ----------------------------------------------------------------------------------

def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k1 = log p - log q per token: unbiased for KL(p||q) on samples from p, can be negative. (B, T)."""
    return logprobs - ref_logprobs


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k3 = (q/p - 1) - log(q/p) per token: unbiased, always >= 0, lower variance (Schulman 2020). (B, T)."""
    log_ratio = ref_logprobs - logprobs
    return torch.expm1(log_ratio) - log_ratio


def kl_per_token(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str) -> torch.Tensor:
    if estimator == "k1":
        return kl_k1(logprobs, ref_logprobs)
    if estimator == "k3":
        return kl_k3(logprobs, ref_logprobs)
    raise ValueError(f"unknown KL estimator {estimator!r}")


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index (B,) of the last real token of each row of a response mask that starts at position 0."""
    return (mask.long().sum(dim=1) - 1).clamp(min=0)


def shaped_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Per-token rewards: -kl_coef * KL on every response token, plus the score at the last real token.

    scores: (B,), kl: (B, T), mask: (B, T) -> (B, T). Positions outside the mask are 0.
    """
    rewards = -kl_coef * kl * mask
    rows = torch.arange(scores.shape[0], device=scores.device)
    rewards[rows, last_token_index(mask)] += scores
    return rewards


def leave_one_out_baseline(scores: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Each answer's baseline: the mean score of the other answers to the same prompt (RLOO, Ahmadian et al.
    2024), or of every other answer in the batch where its prompt was answered once. (B,), (B,) -> (B,).

    A baseline that does not depend on the answer itself leaves the policy gradient unbiased; subtracting it
    takes the reward model's arbitrary offset (Bradley-Terry fixes differences only) and, with repeated
    prompts, each prompt's own level out of the signal before the value head has learnt them.
    """
    B = scores.shape[0]
    if B == 1:
        return torch.zeros_like(scores)
    others = (groups[:, None] == groups[None, :]) & ~torch.eye(B, dtype=torch.bool, device=scores.device)
    n_same = others.sum(dim=1)
    same_mean = (others.to(scores.dtype) * scores[None, :]).sum(dim=1) / n_same.clamp(min=1)
    batch_mean = (scores.sum() - scores) / (B - 1)
    return torch.where(n_same > 0, same_mean, batch_mean)


# ---- advantages --------------------------------------------------------------------------------------------

def gae_loop(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
             lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation, the textbook reverse loop. All (B, T) -> advantages, returns.

    delta_t = r_t + gamma * V_{t+1} - V_t, A_t = delta_t + gamma * lam * A_{t+1}; V and A are 0 past the end.
    """
    rewards, values = rewards * mask, values * mask
    T = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(T)):
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        advantages[:, t] = last
    return advantages, advantages + values


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE without a Python loop: A = delta @ D^T with D[t, s] = (gamma * lam)^(s - t) for s >= t.

    Same result as gae_loop for masks that are 1 on a prefix of each row (our response masks are).
    """
    rewards, values = rewards * mask, values * mask
    T = rewards.shape[1]
    next_values = F.pad(values[:, 1:], (0, 1))
    deltas = (rewards + gamma * next_values - values) * mask
    steps = torch.arange(T, device=rewards.device)
    offsets = steps.view(1, T) - steps.view(T, 1)  # offsets[t, s] = s - t
    discount = torch.where(offsets >= 0, (gamma * lam) ** offsets.clamp(min=0).to(rewards.dtype),
                           torch.zeros((), dtype=rewards.dtype, device=rewards.device))
    advantages = (deltas @ discount.T) * mask
    return advantages, advantages + values


# ---- losses ---------------------------------------------------------------------------------------------------

def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor, cliprange: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped PPO surrogate, all (B, T). Returns the loss and detached stats (clipfrac, approxkl, ratio)."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    pg_losses = -advantages * ratio
    pg_losses_clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.max(pg_losses, pg_losses_clipped), mask)
    with torch.no_grad():
        stats = {"clipfrac": masked_mean((pg_losses_clipped > pg_losses).float(), mask),
                 "approxkl": 0.5 * masked_mean(log_ratio ** 2, mask),
                 "ratio": masked_mean(ratio, mask)}
    return loss, stats


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               cliprange_value: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped value loss 0.5 * max((V - R)^2, (V_clipped - R)^2), all (B, T)."""
    clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    losses = (values - returns) ** 2
    losses_clipped = (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.max(losses, losses_clipped), mask)
    with torch.no_grad():
        stats = {"clipfrac": masked_mean((losses_clipped > losses).float(), mask)}
    return loss, stats


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor, margin: float = 0.0,
                       center_coef: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """-log sigmoid(r_c - r_r - margin), plus center_coef * mean((r_c + r_r)^2) to keep scores near 0.

    chosen, rejected: (N,) rewards of the preferred and the other answer. Stats: accuracy (share of pairs
    with r_c > r_r) and margin (mean r_c - r_r).
    """
    diff = chosen - rejected
    loss = -F.logsigmoid(diff - margin).mean()
    if center_coef:
        loss = loss + center_coef * ((chosen + rejected) ** 2).mean()
    with torch.no_grad():
        stats = {"accuracy": (diff > 0).float().mean(), "margin": diff.mean()}
    return loss, stats


def sequence_logps(token_logps: torch.Tensor, mask: torch.Tensor, average: bool = False) -> torch.Tensor:
    """Log-prob of each whole answer: the sum of its token log-probs, or their mean (IPO). (B, T) -> (B,).

    Positions outside the mask add nothing; an answer with no tokens has log-prob 0.
    """
    total = (token_logps * mask).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1) if average else total


def dpo_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, ref_chosen_logps: torch.Tensor,
             ref_rejected_logps: torch.Tensor, beta: float,
             loss_type: str = "sigmoid") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DPO (Rafailov et al. 2023) or IPO (Azar et al. 2023) on N pairs; all inputs (N,) answer log-probs.

    h = (log pi(c) - log pi(r)) - (log ref(c) - log ref(r)), how much more the policy prefers the chosen
    answer than the reference does. sigmoid: -log sigmoid(beta * h); ipo: (h - 1 / (2 beta))^2.
    Stats use TRL's names: the implicit reward of an answer is beta * (log pi - log ref); accuracies is the
    share of pairs whose chosen reward is strictly higher (a tie, as before any step, counts as wrong).
    """
    logits = (chosen_logps - rejected_logps) - (ref_chosen_logps - ref_rejected_logps)
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * logits)
    elif loss_type == "ipo":
        losses = (logits - 1.0 / (2.0 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss type {loss_type!r}")
    with torch.no_grad():
        chosen_rewards = beta * (chosen_logps - ref_chosen_logps)
        rejected_rewards = beta * (rejected_logps - ref_rejected_logps)
        stats = {M.REWARDS_CHOSEN: chosen_rewards.mean(), M.REWARDS_REJECTED: rejected_rewards.mean(),
                 M.REWARDS_MARGINS: (chosen_rewards - rejected_rewards).mean(),
                 M.REWARDS_ACCURACIES: (chosen_rewards > rejected_rewards).float().mean(),
                 M.LOGPS_CHOSEN: chosen_logps.mean(), M.LOGPS_REJECTED: rejected_logps.mean()}
    return losses.mean(), stats


# ---- KL controllers ---------------------------------------------------------------------------------------

class AdaptiveKLController:
    """Ziegler et al. 2019: beta *= 1 + clip(KL / target - 1, -0.2, 0.2) * n_steps / horizon."""

    def __init__(self, init_kl_coef: float, target: float, horizon: int):
        self.value, self.target, self.horizon = init_kl_coef, target, horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon


class FixedKLController:
    def __init__(self, kl_coef: float):
        self.value = kl_coef

    def update(self, current_kl: float, n_steps: int) -> None:
        pass
