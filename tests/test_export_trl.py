"""TRL (a test dependency: requirements-test.txt, installed by `make test`) trains on the exported bundle as its
LAUNCH.md says: the recipes in trl/ parsed by TRL's own parser, from the bundle folder, 2 steps on CPU."""
import importlib
import math

import pytest
import torch

pytest.importorskip("trl", reason="trl is a test dependency: pip install -r requirements-test.txt (make test does)")

from rlhf_lab.config import RewardConfig  # noqa: E402
from rlhf_lab.generation.chat import tokenize_pairs  # noqa: E402


TWO_STEPS = ["--max_steps", "2", "--per_device_train_batch_size", "2", "--seed", "0"]


def recipe(name: str, exported, tmp_path, monkeypatch, *overrides: str):
    """(script, training, model, dataset) args of `trl <name> --config trl/<name>.yaml`, run from the bundle, with
    only what a CPU test must change overridden on the command line."""
    monkeypatch.chdir(exported.out)
    parser = importlib.import_module(f"trl.scripts.{name}").make_parser()
    return parser.parse_args_and_config(["--config", f"trl/{name}.yaml", "--output_dir", str(tmp_path),
                                         "--bf16", "false", "--use_cpu", "true", *overrides])


def losses(trainer) -> list[float]:
    trainer.train()
    return [row["loss"] for row in trainer.state.log_history if "loss" in row]


def test_reward_trainer_runs_on_the_exported_data_and_reward_model(exported, tmp_path, monkeypatch):
    from trl import RewardTrainer, get_dataset

    script, training, model, data = recipe("reward", exported, tmp_path, monkeypatch, *TWO_STEPS)
    trainer = RewardTrainer(model=model.model_name_or_path, args=training, train_dataset=get_dataset(data)["train"])
    row = trainer.train_dataset[0]
    models = exported.lab.models
    lab_ids, _ = tokenize_pairs(models.tokenizer, [PROMPT0], [CHOSEN0], "cpu", RewardConfig().max_length)
    assert row["chosen_ids"] == lab_ids[0].tolist()  # TRL tokenizes exactly what the lab scored
    assert trainer.processing_class.pad_token_id != trainer.processing_class.eos_token_id
    got = losses(trainer)
    assert len(got) == 2 and all(math.isfinite(x) for x in got)


def test_reward_trainer_starts_a_fresh_head_from_the_policy(exported, tmp_path, monkeypatch):
    """The reward recipe of a bundle without reward_model/ (none trained, or one that reads the whole answer)."""
    from trl import RewardTrainer, get_dataset

    script, training, model, data = recipe("reward", exported, tmp_path, monkeypatch, *TWO_STEPS,
                                           "--model_name_or_path", "policy_merged")
    trainer = RewardTrainer(model=model.model_name_or_path, args=training, train_dataset=get_dataset(data)["train"])
    got = losses(trainer)
    assert len(got) == 2 and all(math.isfinite(x) for x in got)


def test_dpo_trainer_runs_on_the_exported_data_and_policy(exported, tmp_path, monkeypatch):
    from trl import DPOTrainer, get_dataset

    script, training, model, data = recipe("dpo", exported, tmp_path, monkeypatch, *TWO_STEPS)
    trainer = DPOTrainer(model=model.model_name_or_path, args=training, train_dataset=get_dataset(data)["train"])
    got = losses(trainer)
    assert len(got) == 2 and all(math.isfinite(x) for x in got)
    assert torch.isfinite(torch.tensor([r.get("rewards/margins", 0.0) for r in trainer.state.log_history])).all()


@pytest.mark.parametrize("name", ["grpo", "kto", "sft"])
def test_every_recipe_parses_with_trls_parser(name, exported, tmp_path, monkeypatch):
    from trl import get_dataset

    script, training, model, data = recipe(name, exported, tmp_path, monkeypatch)
    assert model.model_name_or_path == "policy_merged" and len(get_dataset(data)["train"]) > 0
    if name == "grpo":
        assert script.reward_model_name_or_path == "reward_model"


PROMPT0, CHOSEN0 = "What is rain?", "Water falling from clouds."
