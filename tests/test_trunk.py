"""The frozen-trunk split: passes that run the bottom layers once and only the adapted top layers per adapter
give the same numbers as whole-model passes; states captured while sampling equal a fresh trunk pass."""
import pytest
import torch

from rlhf_lab.runtime import model_thread as worker
from rlhf_lab.config import ConfigError, PPOConfig
from rlhf_lab.generation.chat import encode_prompts
from rlhf_lab.generation.decode import generate
from rlhf_lab.modeling.adapters import POLICY, REWARD
from rlhf_lab.modeling.trunk import Trunk
from rlhf_lab.algos.ppo import new_state, ppo_step

PROMPTS = ["Hello there", "A much longer prompt than the first one", "Why?"]


def test_split_at_lowest_adapted_layer(split_models, tiny_models):
    assert split_models.cut == 2  # 4 layers, adapters on the top 2
    assert tiny_models.cut == 0   # adapters on every layer: nothing to share, passes run whole


@pytest.mark.parametrize("adapter", [POLICY, REWARD, None])
def test_split_pass_equals_whole_pass(split_models, adapter):
    m = split_models

    def run():
        ids, mask = encode_prompts(m.tokenizer, PROMPTS, m.device)
        with torch.no_grad():
            # Non-zero adapters, so the top layers really differ between policy, reward and reference.
            for p in m.adapter_params(POLICY) + m.adapter_params(REWARD):
                p.normal_(std=0.05)
            scope = m.reference() if adapter is None else m.adapter(adapter)
            with scope:
                split = m.hidden(ids, mask)
                whole = m.hidden_from(Trunk(ids, mask, None))  # every layer from the token ids
                other = m.hidden_from(Trunk.stack(m.trunk(ids, mask).unstack(), m.tokenizer.pad_token_id))
            m.reset_policy()
        return split, whole, other, mask.bool()

    split, whole, restacked, real = worker.call(run)
    assert torch.allclose(split[real], whole[real], atol=1e-5)
    assert not torch.allclose(split[real], torch.zeros_like(split[real]))
    # re-padded rows (unstack, then stack) give the same states on every real token
    assert torch.allclose(restacked[real], split[real], atol=1e-5)


def test_states_captured_while_sampling_equal_a_trunk_pass(split_models):
    m = split_models

    def run():
        rollout = generate(m.model, m.tokenizer, PROMPTS, 10, 1.0, 1.0, seed=5, capture=m.trunk_top())
        fresh = m.trunk(rollout.input_ids, rollout.attention_mask)
        return rollout, fresh

    rollout, fresh = worker.call(run)
    assert rollout.trunk_hidden.shape == fresh.hidden.shape
    real = rollout.attention_mask.bool()
    assert torch.allclose(rollout.trunk_hidden[real], fresh.hidden[real], atol=1e-5)
    # the same seed without capture samples the same tokens (capture only observes)
    plain = worker.call(generate, m.model, m.tokenizer, PROMPTS, 10, 1.0, 1.0, seed=5)
    assert torch.equal(plain.response_ids, rollout.response_ids) and plain.trunk_hidden is None


def test_ppo_on_split_model_changes_only_policy_and_value_head(split_models):
    m = split_models

    def run():
        with torch.no_grad():
            m.reward_head.weight.normal_()
        ids, mask = encode_prompts(m.tokenizer, ["check the reference"], m.device)
        with torch.no_grad(), m.reference():
            ref_before = m.logits(m.hidden(ids, mask))
        base_before = {n: p.detach().clone() for n, p in m.model.named_parameters() if "lora_" not in n}
        lora_before = {n: p.detach().clone() for n, p in m.model.named_parameters() if "lora_" in n}
        cfg = PPOConfig(batch_size=4, num_mini_batches=2, max_new_tokens=8, num_ppo_epochs=2, learning_rate=1e-2)
        row, _ = ppo_step(m, ["a", "b", "c", "d"], cfg, new_state(m, cfg), seed=1)
        with torch.no_grad(), m.reference():
            ref_after = m.logits(m.hidden(ids, mask))
        changed = {n for n, p in m.model.named_parameters() if "lora_" in n and not torch.equal(p, lora_before[n])}
        base_same = all(torch.equal(p, base_before[n]) for n, p in m.model.named_parameters() if "lora_" not in n)
        m.reset_policy()
        return row, ref_before, ref_after, changed, base_same

    row, ref_before, ref_after, changed, base_same = worker.call(run)
    assert changed and all(f".{POLICY}." in n for n in changed)
    # gradients reached the lowest adapted layer through the top pass (not only the last layer)
    assert any(".layers.2." in n for n in changed), sorted(changed)
    assert base_same and torch.equal(ref_before, ref_after)
    assert row["objective/kl"] == row["objective/kl"]


def test_reward_adapter_may_not_reach_below_the_split(split_models):
    with pytest.raises(ConfigError, match="at most the top 2 layers"):
        worker.call(split_models.reset_reward_adapter, 4, 3)
    assert split_models.cut == 2 and set(split_models.model.peft_config) == {POLICY, REWARD}
