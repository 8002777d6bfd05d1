"""Judge the current policy against the reference on fresh samples (same prompts, same seeds)."""
from __future__ import annotations

import torch

from ..algos.ppo import policy_forward
from ..algos.rl_math import kl_k1, kl_k3
from ..algos.stats import mean_interval
from ..config import PPOConfig
from ..generation.sampling import sample
from ..judges import Judge
from ..modeling.adapters import POLICY, LabModels


def paired_gain(prompts: list[str], policy: list[float], reference: list[float]) -> tuple:
    """Mean gain of policy over reference per prompt and its 95% interval. Both answered each prompt from the
    same seed, so differences are paired; a prompt asked more than once counts once (its differences
    averaged), since repeats of one prompt are not independent evidence. Without repeats the gain is
    policy_score - reference_score."""
    by_prompt: dict[str, list[float]] = {}
    for prompt, p, r in zip(prompts, policy, reference):
        by_prompt.setdefault(prompt, []).append(p - r)
    return mean_interval([sum(d) / len(d) for d in by_prompt.values()])


@torch.no_grad()
def evaluate_policy(models: LabModels, judge: Judge, prompts: list[str], cfg: PPOConfig, seed: int) -> dict:
    """The judge's mean score of one sample per prompt from the policy and from the reference (adapters
    disabled), sampled as PPO samples, and the policy's gain over the reference with its 95% interval (the
    gain is clearly there when the interval's low end is above 0); and the policy samples' mean sequence KL
    to the reference (k1 summed over each answer: an unbiased estimate of KL(policy || reference) on the
    policy's own samples; k3 beside it, never negative)."""
    models.use(POLICY)
    policy = sample(models, prompts, cfg.max_new_tokens, cfg.temperature, 1.0, seed=seed, adapter=POLICY,
                    capture=True)
    reference = sample(models, prompts, cfg.max_new_tokens, cfg.temperature, 1.0, seed=seed, adapter=None)
    rows = torch.arange(len(prompts))
    trunk = models.rollout_trunk(policy)  # kept while sampling, as in ppo_step
    logp, _, _ = policy_forward(models, policy, trunk, rows, cfg.temperature)
    with models.reference():
        ref_logp, _, _ = policy_forward(models, policy, trunk, rows, cfg.temperature)
    kl = (kl_k1(logp, ref_logp) * policy.response_mask).sum(1).mean().item()
    kl3 = (kl_k3(logp, ref_logp) * policy.response_mask).sum(1).mean().item()
    p_scores = [judge(p, t) for p, t in zip(prompts, policy.texts)]
    r_scores = [judge(p, t) for p, t in zip(prompts, reference.texts)]
    gain, low, high = paired_gain(prompts, p_scores, r_scores)
    return {"prompts": len(prompts), "policy_score": sum(p_scores) / len(p_scores),
            "reference_score": sum(r_scores) / len(r_scores), "score_gain": gain, "score_gain_ci": [low, high],
            "kl": kl, "kl_k3": kl3,
            "policy_length": policy.response_lengths.float().mean().item(),
            "reference_length": reference.response_lengths.float().mean().item(),
            "policy_finished": 1.0 - policy.truncated.float().mean().item(),
            "reference_finished": 1.0 - reference.truncated.float().mean().item(),
            "examples": [{"prompt": p, "policy": a, "reference": b}
                         for p, a, b in list(zip(prompts, policy.texts, reference.texts))[:3]]}
