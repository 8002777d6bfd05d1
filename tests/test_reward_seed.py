"""Same pairs, same seed, same reward model, whatever the process did before training (a session opened another
way, sampling first): issue 11's "same seed, same model"."""
import pytest
import torch

from cli_config import config_from_cli
from rlhf_lab.cli.parser import build_parser
from rlhf_lab.config import RewardConfig
from rlhf_lab.modeling.adapters import REWARD
from rlhf_lab.runtime import model_thread


@pytest.fixture
def lab(tiny_lab_factory):
    lab = tiny_lab_factory()
    for i in range(6):
        lab.rank(f"prompt {i}", [f"good answer {i}", f"bad {i}", f"worse worse {i}"], [[0], [1], [2]])
    return lab


def trained(lab, seed=0):
    rows = list(lab.train_reward(RewardConfig(epochs=2, batch_rankings=2, seed=seed)))
    weights = model_thread.call(lambda: [p.detach().clone() for p in lab.models.trainable_params(REWARD)])
    return rows[-1], weights


def test_the_global_generator_does_not_change_the_reward_model(lab):
    first, first_weights = trained(lab)
    model_thread.call(lambda: torch.rand(12345))  # what sampling or opening a session would have drawn
    again, again_weights = trained(lab)
    assert again["eval/reward_loss"] == first["eval/reward_loss"]
    assert all(torch.equal(a, b) for a, b in zip(first_weights, again_weights))
    _, other_weights = trained(lab, seed=1)
    assert not all(torch.equal(a, b) for a, b in zip(first_weights, other_weights))


def test_a_fresh_reward_adapter_leaves_the_global_generator_alone(tiny_models):
    def lora_a():
        return [p.detach().clone() for p in tiny_models.lora_params(REWARD, "lora_A")]

    def resets():
        before = torch.get_rng_state()
        tiny_models.reset_reward_adapter(4, 1, seed=3)
        untouched = torch.equal(before, torch.get_rng_state())
        first = lora_a()
        torch.rand(99)
        tiny_models.reset_reward_adapter(4, 1, seed=3)
        same = all(torch.equal(a, b) for a, b in zip(first, lora_a()))
        tiny_models.reset_reward_adapter(4, 1, seed=4)
        other = not all(torch.equal(a, b) for a, b in zip(first, lora_a()))
        tiny_models.reset_reward_adapter(RewardConfig().lora_r, RewardConfig().lora_layers)  # as other tests expect
        return untouched, same, other
    assert model_thread.call(resets) == (True, True, True)  # untouched, same seed same start, other seed not


def test_training_hands_its_seed_to_the_fresh_adapter(lab, monkeypatch):
    seeds = []
    real = lab.models.reset_reward_adapter
    def spy(*args, **kwargs):
        seeds.append(kwargs.get("seed"))
        return real(*args, **kwargs)
    monkeypatch.setattr(lab.models, "reset_reward_adapter", spy)
    list(lab.train_reward(RewardConfig(epochs=1, batch_rankings=2, seed=5)))
    assert seeds == [5]


def test_train_rm_takes_the_seed_on_the_command_line(monkeypatch):
    assert config_from_cli(monkeypatch, ["train-rm", "--session", "s", "--seed", "3"], {"summary": True}).seed == 3
    assert build_parser().parse_args(["train-rm", "--session", "s"]).seed == RewardConfig().seed
