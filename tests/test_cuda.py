"""The lab on a GPU: 4-bit load, sampling, one PPO step and one reward-model step. Runs only where CUDA
exists (skipped on the CPU machines CI uses); run with `pytest -m cuda` on a GPU machine."""
import pytest
import torch

pytestmark = [pytest.mark.cuda, pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def gpu_models():
    from rlhf_lab.config import ModelConfig
    from rlhf_lab.generation.sampling import choose_decoder
    from rlhf_lab.modeling.adapters import load_lab_models
    from rlhf_lab.runtime import model_thread

    models = model_thread.call(load_lab_models, ModelConfig(), 16, torch.device("cuda"))
    model_thread.call(choose_decoder, models)
    return models


def test_4bit_base_on_cuda(gpu_models):
    import bitsandbytes as bnb

    assert gpu_models.device.type == "cuda" and gpu_models.fast_decoder is None  # CUDA samples the model
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in gpu_models.base_model.modules())


def test_sampling_ppo_step_and_reward_step_on_cuda(gpu_models):
    from rlhf_lab.algos.ppo import new_state, ppo_step
    from rlhf_lab.algos.reward import train_reward_model
    from rlhf_lab.config import PPOConfig, RewardConfig
    from rlhf_lab.data.pairs import Pair
    from rlhf_lab.data.prompts import sample_prompts
    from rlhf_lab.generation.sampling import sample
    from rlhf_lab.modeling.adapters import POLICY
    from rlhf_lab.runtime import model_thread

    m = gpu_models

    def run():
        rollout = sample(m, sample_prompts(4, seed=0), 16, 1.0, 1.0, seed=0, adapter=POLICY, capture=True)
        cfg = PPOConfig(batch_size=4, max_new_tokens=16, num_ppo_epochs=1)
        row, _ = ppo_step(m, sample_prompts(4, seed=1), cfg, new_state(m, cfg), seed=1)
        pairs = [Pair(f"Question {i}?", "A clear, finished answer.", "uh") for i in range(6)]
        rows = list(train_reward_model(m, pairs, RewardConfig(epochs=1)))
        m.reset_policy()
        return rollout, row, rows

    rollout, row, rows = model_thread.call(run)
    assert rollout.response_ids.is_cuda and len(rollout.texts) == 4
    assert torch.isfinite(torch.tensor(row["objective/kl"])) and row["objective/kl"] >= 0
    assert any("reward/loss" in r for r in rows) and rows[-1]["summary"]
