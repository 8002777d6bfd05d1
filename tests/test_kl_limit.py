"""PPO's KL limit on a tiny random llama: a step whose answers are past max_kl trains on nothing, the update
before it is undone, the run stops and says why; a policy already past the limit is left as it was."""
import pytest

from rlhf_lab.config import PPOConfig, RewardConfig
from rlhf_lab.errors import ConfigError
from rlhf_lab.lab import ppo as lab_ppo
from rlhf_lab.lab.ppo import policy_versions
from rlhf_lab.modeling.adapters import POLICY
from test_dpo_sft import lab, make_lab, policy_weights, rank_some, same  # noqa: F401 (fixtures)

# lr 1e-2 moves the tiny model's policy far in one step: the first step samples from the reference (KL 0),
# the next ones from a policy well past 0.002 nats.
LOOSE = dict(batch_size=4, num_mini_batches=2, max_new_tokens=8, num_ppo_epochs=2, learning_rate=1e-2)
TIGHT = PPOConfig(**LOOSE, target_kl=0.001, max_kl=0.002)


def ranked_lab(lab):
    rank_some(lab)
    list(lab.train_reward(RewardConfig(epochs=1, batch_rankings=2)))
    return lab


def test_the_update_before_a_step_past_the_limit_is_undone(lab, monkeypatch):
    ranked_lab(lab)
    policies, real_step = [policy_weights(lab)], lab_ppo.ppo_step  # the policy before each step

    def recording(models, *args, **kwargs):  # runs on the model thread, in step with the run
        out = real_step(models, *args, **kwargs)
        policies.append(models.snapshot(POLICY))
        return out

    monkeypatch.setattr(lab_ppo, "ppo_step", recording)
    *rows, summary = list(lab.ppo(6, TIGHT))
    assert summary["kl_limit"] == 0.002 and summary["kl_past_limit"] > 0.002, summary
    assert len(rows) == summary["steps"] == len(policies) - 1 < 6
    assert all(r["objective/kl"] <= 0.002 for r in rows)
    # kept: the policy that sampled the last logged step, i.e. as it was before that step's update
    assert same(policy_weights(lab), policies[-2]) and not same(policy_weights(lab), policies[-1])
    assert "stopped at the KL limit" in summary["message"]
    assert f"step {rows[-1]['step']}'s update was undone" in summary["message"]
    assert summary["policy_version"] == policy_versions(lab)[-1]


def test_a_policy_already_past_the_limit_is_left_alone(lab):
    ranked_lab(lab)
    list(lab.ppo(2, PPOConfig(**LOOSE)))  # moves the policy; the default limit (4 nats) is far off here
    before, versions = policy_weights(lab), policy_versions(lab)
    summary = list(lab.ppo(3, TIGHT))[-1]
    assert summary["steps"] == 0 and "policy_version" not in summary
    assert "before its first update" in summary["message"]
    assert same(policy_weights(lab), before) and policy_versions(lab) == versions


def test_no_limit_runs_every_step(lab):
    ranked_lab(lab)
    rows = list(lab.ppo(3, PPOConfig(**LOOSE, target_kl=0.001, max_kl=0)))
    assert rows[-1]["steps"] == 3 and "kl_limit" not in rows[-1]


def test_the_limit_must_be_above_the_target():
    with pytest.raises(ConfigError, match="max_kl must be above target_kl"):
        PPOConfig(target_kl=2.0, max_kl=1.5)
    with pytest.raises(ConfigError, match="max_kl must be above target_kl"):
        PPOConfig(max_kl=-1)
    assert PPOConfig(max_kl=0).max_kl == 0
