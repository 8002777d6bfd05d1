"""PPO's KL limit on a tiny random llama: a step whose answers are past max_kl trains on nothing, the update
before it is undone, the run stops and says why; a policy already past the limit is left as it was."""
import html

import pytest

from rlhf_lab.algos.ppo import PastKLLimit
from rlhf_lab.config import PPOConfig, RewardConfig
from rlhf_lab.errors import ConfigError
from rlhf_lab.lab import lineage, ppo as lab_ppo
from rlhf_lab.lab.ppo import policy_versions
from rlhf_lab.modeling.adapters import POLICY
from test_dpo_sft import lab, policy_weights, rank_some, same  # noqa: F401 (fixtures)

# lr 1e-2 moves the tiny model's policy far in one step: the first step samples from the reference (KL 0),
# the next ones from a policy well past 0.002 nats.
LOOSE = dict(batch_size=4, num_mini_batches=2, max_new_tokens=8, num_ppo_epochs=2, learning_rate=1e-2)
TIGHT = PPOConfig(**LOOSE, target_kl=0.001, max_kl=0.002)


def ranked_lab(lab):
    rank_some(lab)
    list(lab.train_reward(RewardConfig(epochs=1, batch_rankings=2)))
    return lab


def run_recording(lab, monkeypatch, steps, cfg, past_at=None):
    """Run PPO, recording the policy before each step (the last entry: after the last update). With `past_at`,
    that call of ppo_step finds the answers past the limit, as the KL check does, without training."""
    policies, real_step = [policy_weights(lab)], lab_ppo.ppo_step

    def recording(models, *args, **kwargs):  # runs on the model thread, in step with the run
        if len(policies) == past_at:
            raise PastKLLimit(50.0, cfg.max_kl)
        out = real_step(models, *args, **kwargs)
        policies.append(models.snapshot(POLICY))
        return out

    monkeypatch.setattr(lab_ppo, "ppo_step", recording)
    *rows, summary = list(lab.ppo(steps, cfg))
    return rows, summary, policies


def test_the_update_before_a_step_past_the_limit_is_undone(lab, monkeypatch, tmp_path):
    ranked_lab(lab)
    cfg = PPOConfig(batch_size=4, num_mini_batches=2, max_new_tokens=8, num_ppo_epochs=1)
    rows, summary, policies = run_recording(lab, monkeypatch, 6, cfg, past_at=4)
    assert len(rows) == summary["steps"] == 3 and summary["undone"] == 1
    # kept: the policy that answered at step 3, i.e. before step 3's update; the saved version is that one
    assert same(policy_weights(lab), policies[2]) and not same(policy_weights(lab), policies[3])
    assert summary["message"] == ("stopped at the KL limit: the answers after step 3 were 50 nats from the "
                                  "reference, past 4, so step 3's update was undone; the policy kept is the one "
                                  "that answered at step 3.")
    assert summary["policy_version"] == policy_versions(lab)[-1] == lab.meta().policy_version
    # the controller saw the KL past the limit: after step 3's own update, one more at error +0.2 (50 nats
    # against the 2-nat target), each scaled by 4 rollouts / horizon 64
    beta, error = rows[-1]["objective/kl_coef"], min(max(rows[-1]["objective/kl"] / 2 - 1, -0.2), 0.2)
    assert lab.meta().kl_coef == pytest.approx(beta * (1 + error * 4 / 64) * (1 + 0.2 * 4 / 64))
    assert lab.meta().ppo_steps == 3
    # the story panel and the report say it too, from the saved version
    assert lab.story()[-1] == "PPO " + summary["message"]
    lab.report(tmp_path / "report.html")
    assert html.escape("PPO " + summary["message"]) in (tmp_path / "report.html").read_text()
    # a later run that ends on its own saves a version without a message: the story drops the stop
    monkeypatch.undo()
    *_, later = list(lab.ppo(2, cfg))
    assert later["policy_version"] == lab.meta().policy_version and "message" not in later
    assert not any("KL limit" in line for line in lab.story())


def test_one_step_then_past_the_limit_saves_nothing(lab, monkeypatch):
    ranked_lab(lab)
    versions = policy_versions(lab)
    rows, summary, policies = run_recording(lab, monkeypatch, 6, PPOConfig(**LOOSE), past_at=2)
    assert len(rows) == 1 and summary["undone"] == 1 and "policy_version" not in summary
    assert same(policy_weights(lab), policies[0]) and policy_versions(lab) == versions
    assert lab.meta().ppo_steps == 1  # the next run numbers its steps after the logged one
    assert summary["message"].endswith("the policy is as it was before this run, and no version was saved.")


def test_the_real_check_keeps_every_logged_step_within_the_limit(lab, monkeypatch):
    ranked_lab(lab)
    rows, summary, policies = run_recording(lab, monkeypatch, 6, TIGHT)
    # the first step samples from the reference (KL 0); lr 1e-2 takes the next ones past 0.002 nats
    assert summary["kl_limit"] == 0.002 and summary["kl_past_limit"] >= 0.002, summary
    assert 1 <= len(rows) < 6 and all(r["objective/kl"] <= 0.002 for r in rows)
    assert same(policy_weights(lab), policies[-2])
    assert ("policy_version" in summary) == (len(rows) > 1)


def test_a_policy_already_past_the_limit_is_left_alone(lab):
    ranked_lab(lab)
    list(lab.ppo(2, PPOConfig(**LOOSE, max_kl=0)))  # moves the policy
    before, versions = policy_weights(lab), policy_versions(lab)
    summary = list(lab.ppo(3, TIGHT))[-1]
    assert summary["steps"] == 0 and "policy_version" not in summary
    assert "before its first update" in summary["message"] and summary["undone"] == 0
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


def test_the_story_takes_a_stop_only_from_a_ppo_versions_summary(tmp_path):
    import json
    from types import SimpleNamespace

    from rlhf_lab.lab import report as lab_report

    session, meta = SimpleNamespace(adapter_dir=lambda kind: tmp_path / kind), SimpleNamespace(policy_version="v002")
    info_file = tmp_path / "policy" / "v002" / "info.json"
    info_file.parent.mkdir(parents=True)
    for info, told in [({"algorithm": "ppo", "round": 3, "summary": {"message": "m"}}, {"round": 3, "message": "m"}),
                       ({"algorithm": "ppo", "round": 3, "summary": {"steps": 2}}, None),  # ended on its own
                       ({"algorithm": "dpo", "round": 3, "summary": {"message": "m"}}, None),
                       ({}, None), ([1, 2], None), ({"algorithm": "ppo", "summary": "m"}, None)]:  # missing, odd
        info_file.write_text(json.dumps(info))
        assert lab_report.ppo_stop(session, meta) == told, info
    info_file.write_text("[1, 2]")
    assert lineage.read_info(session, "v002") == {}  # not an object: read as nothing, for every reader
    info_file.unlink()
    assert lineage.read_info(session, "v002") == {} and lab_report.ppo_stop(session, meta) is None
    assert lab_report.ppo_stop(session, SimpleNamespace(policy_version="base")) is None
