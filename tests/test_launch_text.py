"""What LAUNCH.md says when PPO cannot run on the cluster, for each reason the reward model is missing."""
import pytest

from rlhf_lab.exports.launch import _no_ppo, _reward_bullets


def info(skipped=None, pairs=3, prompts=2):
    files = {"preferences.jsonl": pairs or None, "prompts.jsonl": prompts or None}
    return {"files": files, "reward_model": False, "reward_skipped": skipped, "pad_token": "<pad>",
            "pad_added": False}


def test_no_prompts_asks_for_rankings_first():
    assert _no_ppo(info(prompts=0)) == "# PPO needs prompts: rank some in the lab first"


def test_no_reward_model_asks_for_one():
    assert _no_ppo(info()) == "# PPO needs a reward model: train one in the lab first"
    assert "the session has no reward model yet" in _reward_bullets(info())


@pytest.mark.parametrize("skipped,fix,why", [
    ("readout", "train one with --readout last in the lab and export again", "reads the whole answer"),
    ("broken", "retrain it in the lab and export again", "could not be read")])
def test_a_left_out_reward_model_points_at_the_pairs_above_when_there_are_some(skipped, fix, why):
    text = _no_ppo(info(skipped))
    assert "Train one from preferences.jsonl\n# above" in text and text.endswith(fix)
    assert why in _reward_bullets(info(skipped))


@pytest.mark.parametrize("skipped", ["readout", "broken"])
def test_without_pairs_it_never_says_above(skipped):
    text = _no_ppo(info(skipped, pairs=0))
    assert "above" not in text and "no preference pair was\n# exported" in text and text.endswith("export again")
