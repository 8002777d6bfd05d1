"""PPO's score baseline on a tiny model: the reward model's offset leaves the update unchanged, and answers to
the same prompt are drawn together when asked."""
import random
from types import SimpleNamespace

import pytest
import torch

from rlhf_lab.algos.ppo import new_state, ppo_step
from rlhf_lab.config import PPOConfig
from rlhf_lab.errors import ConfigError
from rlhf_lab.lab.ppo import _prompts
from rlhf_lab.modeling.adapters import POLICY
from rlhf_lab.runtime import model_thread as worker

PROMPTS = ["a", "b", "a", "c"]


def policy_after_one_step(m, offset: float, baseline: bool) -> list[torch.Tensor]:
    """The policy adapter and value head after one PPO step from a fresh policy, rewarded by answer length
    plus `offset`."""
    def scorer(rollout):
        return rollout.response_lengths.float() / 4 + offset

    m.reset_policy()
    torch.manual_seed(0)  # the minibatch shuffle
    cfg = PPOConfig(batch_size=4, num_mini_batches=2, max_new_tokens=8, num_ppo_epochs=1, learning_rate=1e-2,
                    score_baseline=baseline, missing_eos_penalty=0.0)
    ppo_step(m, PROMPTS, cfg, new_state(m, cfg), seed=3, scorer=scorer)
    after = m.snapshot(POLICY)
    m.reset_policy()
    return after


def max_difference(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def test_score_offset_does_not_change_the_update_with_the_baseline(tiny_models):
    def run():
        return ([policy_after_one_step(tiny_models, offset, True) for offset in (0.0, -7.0)],
                [policy_after_one_step(tiny_models, offset, False) for offset in (0.0, -7.0)])

    (with_a, with_b), (without_a, without_b) = worker.call(run)
    assert max_difference(with_a, with_b) < 1e-5
    # the check can fail: without the baseline the same offset changes the step
    assert max_difference(without_a, without_b) > 1e-3


def test_prompts_drawn_in_groups():
    lab = SimpleNamespace(rankings=lambda: [{"prompt": f"p{i}"} for i in range(10)])
    drawn = _prompts(lab, 8, random.Random(0), per_prompt=4)
    assert len(drawn) == 8 and drawn[:4] == [drawn[0]] * 4 and drawn[4:] == [drawn[4]] * 4
    assert len(_prompts(lab, 8, random.Random(0))) == 8


def test_kl_horizon_cannot_push_the_coefficient_below_zero():
    # worst step: beta *= 1 - 0.2 * 16 / 3.2 = 0
    with pytest.raises(ConfigError, match="above a fifth of the batch size"):
        PPOConfig(batch_size=16, kl_horizon=3)
    assert PPOConfig(batch_size=16, kl_horizon=4).kl_horizon == 4


def test_batch_must_split_into_groups():
    with pytest.raises(ConfigError, match="groups of 3"):
        PPOConfig(batch_size=16, samples_per_prompt=3)
