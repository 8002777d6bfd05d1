"""On a tiny model: PPO touches only the policy adapter and value head; reward training only the reward
adapter and head; the reference (adapters disabled) never changes; the base is held once."""
import torch

from rlhf_lab.runtime import model_thread as worker
from rlhf_lab.config import PPOConfig, RewardConfig
from rlhf_lab.generation.chat import encode_prompts
from rlhf_lab.modeling.adapters import POLICY, REWARD
from rlhf_lab.algos.ppo import new_state, ppo_step
from rlhf_lab.data.pairs import Pair
from rlhf_lab.algos.reward import train_reward_model


def snapshot(models):
    return worker.call(_snapshot, models)


def _snapshot(models):
    state = {n: p.detach().clone() for n, p in models.model.named_parameters()}
    state.update({f"value_head.{n}": p.detach().clone() for n, p in models.value_head.named_parameters()})
    state.update({f"reward_head.{n}": p.detach().clone() for n, p in models.reward_head.named_parameters()})
    return state


def changed(before, after):
    # Tensor work runs on the model thread: torch ops on two threads slow each other down for good.
    return worker.call(lambda: {n for n in before if not torch.equal(before[n], after[n])})


def reference_logits(models):
    ids, mask = encode_prompts(models.tokenizer, ["check the reference"], models.device)
    with torch.no_grad(), models.reference():
        return models.logits(models.hidden(ids, mask))


def test_ppo_step_changes_only_policy_and_value_head(tiny_models):
    m = tiny_models

    def run():
        # A reward head that prefers something, so advantages are non-zero.
        with torch.no_grad():
            m.reward_head.weight.normal_()
        ref_before = reference_logits(m)
        before = snapshot(m)
        cfg = PPOConfig(batch_size=4, num_mini_batches=2, max_new_tokens=8, num_ppo_epochs=2, learning_rate=1e-2,
                        max_kl=0)  # whatever policy an earlier test left: no KL limit to stop the step
        state = new_state(m, cfg)
        row, samples = ppo_step(m, ["a", "b", "c", "d"], cfg, state, seed=1)
        return ref_before, before, row, samples

    ref_before, before, row, samples = worker.call(run)
    diff = changed(before, snapshot(m))
    assert diff, "PPO changed nothing"
    assert all((f".{POLICY}." in n and "lora_" in n) or n.startswith("value_head.") for n in diff), diff
    assert any(n.startswith("value_head.") for n in diff)
    assert torch.equal(ref_before, worker.call(reference_logits, m))
    for key in ("objective/kl", "objective/scores", "objective/rlhf_reward", "policy/clipfrac_avg", "val/ratio"):
        assert key in row and row[key] == row[key]  # present and not NaN
    assert len(samples) == 4


def test_reward_training_changes_only_reward_adapter_and_head(tiny_models):
    m = tiny_models
    pairs = [Pair(f"prompt {i}", "short", "a much longer answer " * 3, f"r{i}") for i in range(6)]
    before = snapshot(m)
    rows = list(worker.iterate(lambda: train_reward_model(
        m, pairs, RewardConfig(epochs=2, learning_rate=1e-2, batch_rankings=2, eval_fraction=0.34))))
    diff = changed(before, snapshot(m))
    assert rows[-1]["summary"] and rows[-1]["pairs_eval"] >= 1
    # every training pair preferred the shorter answer, and so does every held-out pair: "prefer the shorter"
    # gets all of them right, so no pair is left where length points the wrong way
    summary = rows[-1]
    assert summary["length_rule"] == "shorter" and summary["eval/length_rule_accuracy"] == 1.0
    assert summary["pairs_against_length"] == 0 and summary["eval/reward_accuracy_against_length"] is None
    assert diff and all((f".{REWARD}." in n and "lora_" in n) or n.startswith("reward_head.") for n in diff), diff


def test_one_evaluation_leaves_the_others_no_other_choice(tiny_models):
    # With a single held-out evaluation every held-out prompt is scored there, so the leave-one-prompt-out
    # accuracy must equal the held-out accuracy: the per-prompt counts add up to the totals.
    pairs = [Pair(f"prompt {i}", "short", "a much longer answer " * 3, f"r{i}") for i in range(6)]
    summary = list(worker.iterate(lambda: train_reward_model(
        tiny_models, pairs, RewardConfig(epochs=1, batch_rankings=2, eval_fraction=0.34))))[-1]
    assert summary["pairs_eval"] == 3
    assert summary["eval/reward_accuracy_lopo"] == summary["eval/reward_accuracy"]


def test_one_base_copy_in_memory(tiny_models):
    m = tiny_models
    base_params = sum(p.numel() for n, p in m.model.named_parameters() if "lora_" not in n)
    # tied embeddings: the base's own unique parameter count
    unique = {p.data_ptr(): p.numel() for n, p in m.base_model.named_parameters() if "lora_" not in n}
    assert base_params == sum(unique.values())
    assert m.base_weight_bytes() <= sum(unique.values()) * 4 + sum(b.numel() * b.element_size()
                                                                   for b in m.model.buffers())
