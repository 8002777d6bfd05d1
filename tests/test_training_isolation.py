"""On a tiny model: PPO touches only the policy adapter and value head; reward training only the reward
adapter and head; the reference (adapters disabled) never changes; the base is held once."""
import pytest
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


def test_held_out_evaluation_counts_each_prompt_on_its_own_pairs(tiny_models):
    # evaluate() scores four rankings per forward and splits the pairs back by prompt (for the
    # leave-one-prompt-out accuracy); here each ranking is scored alone and its pairs counted by hand.
    # Rankings of 3 and 2 answers (3 pairs and 1), two of them on one prompt.
    from rlhf_lab.algos.reward import TrunkCache, evaluate
    from rlhf_lab.data.pairs import groups_from_pairs

    ranked = {"r0": ("p0", ["one", "two words", "three words here"]), "r1": ("p0", ["four", "five five"]),
              "r2": ("p1", ["six", "seven seven", "eight eight eight"]), "r3": ("p2", ["nine", "ten ten"])}
    pairs = [Pair(prompt, answers[i], answers[j], rid)
             for rid, (prompt, answers) in ranked.items() for i in range(len(answers))
             for j in range(i + 1, len(answers))]
    groups = groups_from_pairs(pairs)
    m = tiny_models

    def run():
        head = m.reward_head.weight.detach().clone()
        try:
            m.use(REWARD)
            torch.manual_seed(3)
            with torch.no_grad():
                m.reward_head.weight.normal_()  # a head that tells answers apart
            cache = TrunkCache(m, 64)
            result = evaluate(m, groups, cache)
            by_hand, every_score = {}, []
            for g in groups:
                scores = m.score_from(cache.batch([g.prompt] * len(g.completions), g.completions, g.truncated))
                every_score += scores.tolist()
                loss, correct, n = by_hand.get(g.prompt, (0.0, 0.0, 0))
                for i, j in g.pairs:
                    loss += torch.nn.functional.softplus(scores[j] - scores[i]).item()
                    correct += float(scores[i] > scores[j]) + 0.5 * float(scores[i] == scores[j])
                by_hand[g.prompt] = (loss, correct, n + len(g.pairs))
            return result, by_hand, every_score
        finally:
            with torch.no_grad():
                m.reward_head.weight.copy_(head)

    result, by_hand, every_score = worker.call(run)
    assert max(every_score) - min(every_score) > 1e-3  # answers scored apart: a misplaced pair would show
    assert {p: v[2] for p, v in result["by_prompt"].items()} == {"p0": 4, "p1": 3, "p2": 1}
    for prompt, (loss, correct, n) in by_hand.items():
        got = result["by_prompt"][prompt]
        assert got[0] == pytest.approx(loss, abs=1e-4) and got[1] == correct and got[2] == n
    assert result["pairs"] == 8 and result["correct"] == sum(v[1] for v in by_hand.values())


def test_one_base_copy_in_memory(tiny_models):
    m = tiny_models
    base_params = sum(p.numel() for n, p in m.model.named_parameters() if "lora_" not in n)
    # tied embeddings: the base's own unique parameter count
    unique = {p.data_ptr(): p.numel() for n, p in m.base_model.named_parameters() if "lora_" not in n}
    assert base_params == sum(unique.values())
    assert m.base_weight_bytes() <= sum(unique.values()) * 4 + sum(b.numel() * b.element_size()
                                                                   for b in m.model.buffers())
