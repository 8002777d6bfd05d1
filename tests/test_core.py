"""The RLHF math against hand-computed numbers."""
import math

import pytest
import torch

from rlhf_lab.algos import rl_math as core


def test_logprobs_match_log_softmax_and_hand_values():
    logits = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]])
    tokens = torch.tensor([[2, 1]])
    lp = core.logprobs_from_logits(logits, tokens)
    z = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    assert lp[0, 0].item() == pytest.approx(3 - z, abs=1e-6)
    assert lp[0, 1].item() == pytest.approx(math.log(1 / 3), abs=1e-6)


def test_entropy_uniform_and_peaked():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]])
    ent = core.entropy_from_logits(logits)
    assert ent[0, 0].item() == pytest.approx(math.log(4), abs=1e-6)
    assert ent[0, 1].item() == pytest.approx(0.0, abs=1e-6)


def test_masked_mean_var_whiten():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    m = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert core.masked_mean(x, m).item() == pytest.approx(2.0)
    assert core.masked_var(x, m).item() == pytest.approx(1.0)  # unbiased: ((1+0+1)/3)*3/2
    w = core.masked_whiten(x, m)
    assert w[0, :3].tolist() == pytest.approx([-1.0, 0.0, 1.0], abs=1e-4)
    assert w[0, 3].item() == 0.0
    assert core.masked_whiten(x, m, shift_mean=False)[0, :3].tolist() == pytest.approx([1.0, 2.0, 3.0], abs=1e-4)


def test_kl_estimators():
    logp = torch.tensor([[math.log(0.5), math.log(0.25)]])
    ref = torch.tensor([[math.log(0.25), math.log(0.5)]])
    k1 = core.kl_k1(logp, ref)
    assert k1.tolist()[0] == pytest.approx([math.log(2), -math.log(2)])
    k3 = core.kl_k3(logp, ref)
    # r = q/p: 0.5 -> (0.5 - 1) - log 0.5 ; 2 -> (2 - 1) - log 2
    assert k3.tolist()[0] == pytest.approx([-0.5 + math.log(2), 1 - math.log(2)])
    assert (core.kl_k3(torch.randn(4, 7), torch.randn(4, 7)) >= 0).all()


def test_shaped_rewards_kl_everywhere_score_at_last_token():
    kl = torch.tensor([[0.1, 0.2, 0.3, 0.4], [1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    scores = torch.tensor([2.0, -1.0])
    r = core.shaped_rewards(scores, kl, mask, kl_coef=0.5)
    assert r[0].tolist() == pytest.approx([-0.05, -0.1, -0.15 + 2.0, 0.0])
    assert r[1].tolist() == pytest.approx([-0.5, -0.5, -0.5, -0.5 - 1.0])


def test_leave_one_out_baseline_hand_computed():
    # prompts a, a, b, a, c: a's answers average their two siblings; b and c, answered once, the other four
    scores = torch.tensor([1.0, 2.0, 4.0, 6.0, -3.0])
    groups = torch.tensor([0, 0, 1, 0, 2])
    base = core.leave_one_out_baseline(scores, groups)
    assert base.tolist() == pytest.approx([4.0, 3.5, 1.5, 1.5, 3.25])
    assert core.leave_one_out_baseline(torch.tensor([5.0]), torch.tensor([0])).tolist() == [0.0]
    # a constant offset of the reward model leaves the centred scores unchanged
    assert (scores + 7 - core.leave_one_out_baseline(scores + 7, groups)).tolist() == pytest.approx(
        (scores - base).tolist())


def test_gae_hand_computed():
    rewards = torch.tensor([[0.0, 1.0]])
    values = torch.tensor([[0.5, 0.25]])
    mask = torch.ones(1, 2)
    adv, ret = core.gae(rewards, values, mask, gamma=0.9, lam=0.5)
    # delta1 = 1 - 0.25 = 0.75; delta0 = 0 + 0.9*0.25 - 0.5 = -0.275; A0 = -0.275 + 0.45*0.75 = 0.0625
    assert adv[0].tolist() == pytest.approx([0.0625, 0.75])
    assert ret[0].tolist() == pytest.approx([0.5625, 1.0])


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 0.5), (1.0, 1.0), (0.99, 0.0)])
def test_gae_loop_equals_vectorized(gamma, lam):
    torch.manual_seed(0)
    B, T = 5, 9
    lengths = torch.tensor([9, 1, 4, 7, 3])
    mask = (torch.arange(T).view(1, T) < lengths.view(B, 1)).float()
    rewards, values = torch.randn(B, T), torch.randn(B, T)
    a1, r1 = core.gae_loop(rewards, values, mask, gamma, lam)
    a2, r2 = core.gae(rewards, values, mask, gamma, lam)
    assert torch.allclose(a1, a2, atol=1e-5) and torch.allclose(r1, r2, atol=1e-5)
    assert (a2 * (1 - mask)).abs().max() == 0


def test_policy_loss_clips():
    adv = torch.tensor([[1.0, -1.0]])
    old = torch.zeros(1, 2)
    new = torch.log(torch.tensor([[1.5, 0.5]]))  # ratios 1.5 and 0.5
    loss, stats = core.policy_loss(new, old, adv, torch.ones(1, 2), cliprange=0.2)
    # token 0: max(-1.5, -1.2) = -1.2 ; token 1: max(0.5, 0.8) = 0.8 -> mean -0.2
    assert loss.item() == pytest.approx(-0.2)
    assert stats["clipfrac"].item() == pytest.approx(1.0)
    assert stats["ratio"].item() == pytest.approx(1.0)
    loss_same, stats_same = core.policy_loss(old, old, adv, torch.ones(1, 2), 0.2)
    assert loss_same.item() == pytest.approx(0.0) and stats_same["approxkl"].item() == 0.0


def test_value_loss_clips():
    old = torch.tensor([[0.0, 0.0]])
    new = torch.tensor([[1.0, 0.1]])
    ret = torch.tensor([[1.0, 1.0]])
    loss, stats = core.value_loss(new, old, ret, torch.ones(1, 2), cliprange_value=0.2)
    # token 0: unclipped 0, clipped (0.2-1)^2=0.64 -> 0.64 ; token 1: 0.81 vs 0.81 -> 0.81; 0.5*mean
    assert loss.item() == pytest.approx(0.5 * (0.64 + 0.81) / 2)
    assert stats["clipfrac"].item() == pytest.approx(0.5)


def test_bradley_terry_loss_accuracy_margin():
    chosen = torch.tensor([2.0, 0.0, 1.0])
    rejected = torch.tensor([1.0, 1.0, 1.0])
    loss, stats = core.bradley_terry_loss(chosen, rejected)
    expected = -(math.log(1 / (1 + math.exp(-1))) + math.log(1 / (1 + math.exp(1))) + math.log(0.5)) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert stats["accuracy"].item() == pytest.approx(1 / 3)
    assert stats["margin"].item() == pytest.approx(0.0)
    with_margin, _ = core.bradley_terry_loss(chosen, rejected, margin=1.0)
    assert with_margin.item() > loss.item()
    centered, _ = core.bradley_terry_loss(chosen, rejected, center_coef=0.1)
    assert centered.item() == pytest.approx(expected + 0.1 * ((9 + 1 + 4) / 3), abs=1e-6)


def test_adaptive_kl_controller():
    ctl = core.AdaptiveKLController(0.1, target=2.0, horizon=100)
    ctl.update(4.0, n_steps=10)  # error clipped to +0.2 -> * (1 + 0.02)
    assert ctl.value == pytest.approx(0.102)
    ctl.update(1.0, n_steps=10)  # error -0.5 clipped to -0.2 -> * 0.98
    assert ctl.value == pytest.approx(0.102 * 0.98)
    fixed = core.FixedKLController(0.3)
    fixed.update(100.0, 10)
    assert fixed.value == 0.3


def test_wilson_interval_hand_computed():
    from rlhf_lab.algos.stats import wilson_interval
    # 8 of 10: p=0.8, z=1.96: centre=(0.8+0.19208)/1.38416=0.71674, half=1.96*sqrt(0.016+0.0009604)/1.38416=0.18441
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(20, 40)
    assert low < 0.5 < high  # 50% on 40 pairs: chance cannot be ruled out


def test_unselected_accuracy_scores_each_prompt_at_the_others_choice():
    from rlhf_lab.algos.stats import unselected_accuracy
    # Three held-out prompts, two evaluations; (loss sum, correct, pairs) per prompt.
    history = [{"a": (1.0, 2, 2), "b": (4.0, 1, 4), "c": (3.0, 3, 3)},
               {"a": (0.5, 1, 2), "b": (4.4, 3, 4), "c": (3.6, 2, 3)}]
    # All prompts: mean loss 8/9 = 0.889 then 8.5/9 = 0.944, so training keeps evaluation 0 (6 of 9 right).
    # Leave a out: (4+3)/7 = 1.0 against (4.4+3.6)/7 = 1.143 -> evaluation 0, a scores 2 of 2.
    # Leave b out: (1+3)/5 = 0.8 against (0.5+3.6)/5 = 0.82 -> evaluation 0, b scores 1 of 4.
    # Leave c out: (1+4)/6 = 0.833 against (0.5+4.4)/6 = 0.817 -> evaluation 1, c scores 2 of 3.
    assert unselected_accuracy(history) == pytest.approx(5 / 9)
    # A later evaluation must be lower by more than the tolerance to be chosen, as in training.
    flat = [{"a": (1.0, 1, 1), "b": (1.0, 0, 1)}, {"a": (0.99995, 0, 1), "b": (0.99995, 0, 1)}]
    assert unselected_accuracy(flat) == 0.5  # both scored at evaluation 0 (at evaluation 1: 0)
    # Each prompt scored where its own loss is lowest would give 1.0; where all the prompts choose, 0.5.
    crossed = [{"a": (1.0, 0, 1), "b": (1.0, 1, 1)}, {"a": (0.1, 1, 1), "b": (1.2, 0, 1)}]
    assert unselected_accuracy(crossed) == 0.0  # a at b's choice (evaluation 0), b at a's (evaluation 1)
    assert unselected_accuracy([{"a": (1.0, 1, 2)}]) is None  # one prompt: nothing to choose with
    assert unselected_accuracy([]) is None


def test_mean_interval_hand_computed():
    from rlhf_lab.algos.stats import mean_interval, t_critical
    # [1,2,3,4]: mean 2.5, sd=sqrt(5/3)=1.29099, se=0.645497, t(3)=3.182 -> half 2.05397
    mean, low, high = mean_interval([1, 2, 3, 4])
    assert mean == 2.5 and low == pytest.approx(0.44603, abs=1e-5) and high == pytest.approx(4.55397, abs=1e-5)
    # a gain of 1 on every prompt has no spread: the interval is the point
    assert mean_interval([1.0] * 16) == (1.0, 1.0, 1.0)
    assert mean_interval([0.5]) == (0.5, None, None)
    assert t_critical(15) == 2.131
    # beyond the table, the expansion: exact t(0.975, 40) = 2.0211, t(0.975, 120) = 1.9799
    assert t_critical(40) == pytest.approx(2.0211, abs=2e-4) and t_critical(120) == pytest.approx(1.9799, abs=2e-4)
    with pytest.raises(ValueError):
        mean_interval([])


def test_paired_gain_counts_a_repeated_prompt_once():
    from rlhf_lab.arena.evaluate import paired_gain
    # differences a: 2, 0 -> 1; b: 1; c: 2. mean 4/3, sd sqrt(1/3), se 1/3, t(2)=4.303 -> half 1.434333
    gain, low, high = paired_gain(["a", "a", "b", "c"], [2, 0, 1, 3], [0, 0, 0, 1])
    assert gain == pytest.approx(4 / 3) and low == pytest.approx(-0.101, abs=1e-3)
    assert high == pytest.approx(2.76767, abs=1e-4)


def test_r_squared_hand_computed():
    from rlhf_lab.algos.stats import r_squared
    assert r_squared([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert r_squared([1, 2, 3], [5, 5, 5]) == 0.0
    # x=[1,2,3,4], y=[1,3,2,4]: sxy=4.0, sxx=5, syy=5 -> r^2 = 16/25
    assert r_squared([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.64)


def test_length_rule_hand_computed():
    from rlhf_lab.algos.stats import length_rule
    # training: longer won 2 of 3 pairs -> the rule prefers the longer answer
    train = [(30, 10), (25, 20), (5, 40)]
    # held out: right, wrong, equal lengths (half), wrong -> (1 + 0 + 0.5 + 0) / 4
    held = [(50, 20), (10, 30), (15, 15), (8, 9)]
    rule = length_rule(train, held)
    assert rule == {"longer_wins": True, "accuracy": 0.375, "against": [1, 3]}
    # training that favours the shorter answer flips which held-out pairs length gets wrong
    rule = length_rule([(10, 30), (20, 25)], held)
    assert rule == {"longer_wins": False, "accuracy": 0.625, "against": [0]}
    assert length_rule(train, [])["accuracy"] is None


def test_diagnostics_say_what_went_wrong():
    from rlhf_lab import diagnostics as D
    weak = {"eval/reward_accuracy": 0.55, "eval/accuracy_ci": [0.36, 0.72], "pairs_eval": 20,
            "reward/length_r2": 0.81}
    said = D.reward_warnings(weak, prompts=16, eval_fraction=0.25)
    assert len(said) == 2 and "chance" in said[0] and "more prompts" in said[0] and "81%" in said[1]
    assert D.reward_warnings({"eval/reward_accuracy": 0.9, "eval/accuracy_ci": [0.78, 0.96], "pairs_eval": 48,
                              "reward/length_r2": 0.1}) == []
    length_only = {"eval/reward_accuracy": 0.8, "eval/accuracy_ci": [0.64, 0.9], "pairs_eval": 40,
                   "eval/reward_accuracy_against_length": 0.25, "pairs_against_length": 8, "length_rule": "longer"}
    said = D.reward_warnings(length_only)
    assert len(said) == 1 and "8 held-out pairs where the longer answer lost" in said[0] and "25%" in said[0]
    assert D.reward_warnings({**length_only, "eval/reward_accuracy_against_length": 0.75}) == []
    assert D.reward_warnings({**length_only, "pairs_against_length": 4}) == []  # too few to say
    lucky = {"eval/reward_accuracy": 0.85, "eval/accuracy_ci": [0.71, 0.93], "pairs_eval": 40,
             "eval/reward_accuracy_lopo": 0.75}  # 4 pairs fewer when the epoch is not chosen on them
    said = D.reward_warnings(lucky)
    assert len(said) == 1 and "85% leans on the epoch" in said[0] and "it is 75%" in said[0]
    assert D.reward_warnings({**lucky, "eval/reward_accuracy_lopo": 0.76}) == []  # 0.09 apart: a small gap
    assert D.reward_warnings({**lucky, "pairs_eval": 20}) == []  # 0.1 of 20 pairs is 2 pairs
    timed = {"eval/reward_accuracy": 0.9, "eval/accuracy_ci": [0.78, 0.96], "pairs_eval": 48, "stopped": "time",
             "epochs": 3, "epochs_max": 8, "max_seconds": 120.0, "step": 20}
    said = D.reward_warnings(timed)
    assert len(said) == 1 and "time budget (120 s) after 20 steps, with 3 of up to 8 epochs begun." in said[0]
    assert "slower CPU" in said[0] and "`train-rm` without --max-seconds" in said[0]
    assert "after 1 step, with 1 of" in D.reward_warnings({**timed, "step": 1, "epochs": 1})[0]
    untrained = {"stopped": "time", "step": 0, "epochs": 0, "epochs_max": 8, "max_seconds": 1e-06,
                 "eval/reward_accuracy": None, "eval/accuracy_ci": None, "pairs_eval": 3}
    assert D.reward_warnings(untrained)[0].startswith("Training stopped at its time budget (1e-06 s) before its "
                                                      "first step: nothing was trained or saved.")
    assert D.reward_warnings({**timed, "stopped": None}) == []  # early stopping or the epochs ended it
    assert D.reward_warnings({**timed, "stopped": "stop"}) == []  # the person's Stop says so itself
    hacked = [{"val/response_length": 60, "val/finished_frac": 0.9, "objective/scores": 0.1,
               "objective/gold_scores": 2.0}] * 3 + \
             [{"val/response_length": 20, "val/finished_frac": 0.5, "objective/scores": 1.5,
               "objective/gold_scores": 1.0}] * 3
    said = D.ppo_warnings(hacked)
    assert len(said) == 3 and "67% shorter" in said[0] and "90% → 50%" in said[1] and "over-optimising" in said[2]
    healthy = [{"val/response_length": 50, "val/finished_frac": 0.9, "objective/scores": s,
                "objective/gold_scores": s} for s in (0.1, 0.2, 0.3, 0.5, 0.6, 0.7)]
    assert D.ppo_warnings(healthy) == []


def test_against_length_reads_each_pairs_own_margin():
    """The reward model's margins and the pairs' lengths line up pair by pair, across batches of groups."""
    from types import SimpleNamespace
    import torch
    from rlhf_lab.algos.reward import length_checks
    from rlhf_lab.data.pairs import Pair, groups_from_pairs

    # A stand-in reward model: the score of an answer is its last word as a number; length = words.
    models = SimpleNamespace(tokenizer=lambda text, add_special_tokens: {"input_ids": text.split()},
                             score_from=lambda texts: torch.tensor([float(t.split()[-1]) for t in texts]))
    cache = SimpleNamespace(batch=lambda prompts, texts, cut: texts)
    # training: the longer answer won 2 of 3 pairs, so the rule is "prefer the longer"
    train = groups_from_pairs([Pair("t1", "a a a 0", "a 0", "t1"), Pair("t2", "b b b 0", "b 0", "t2"),
                               Pair("t3", "c 0", "c c c 0", "t3")])
    # held out, 6 groups (two batches of 4): the shorter answer won in groups 2, 4 and 6; the model's score
    # puts the chosen higher in groups 2 and 6 only (and in 1, 3 and 5, where the rule is right anyway)
    held = groups_from_pairs([Pair("h1", "x x x 5", "x 1", "h1"), Pair("h2", "y 5", "y y y 1", "h2"),
                              Pair("h3", "z z z 5", "z 1", "h3"), Pair("h4", "w 1", "w w w 5", "h4"),
                              Pair("h5", "v v v 5", "v 1", "h5"), Pair("h6", "u 9", "u u u 2", "h6")])
    result = length_checks(models, train, held, cache)
    assert result["length_rule"] == "longer" and result["eval/length_rule_accuracy"] == 0.5
    assert result["pairs_against_length"] == 3
    assert result["eval/reward_accuracy_against_length"] == pytest.approx(2 / 3)
    assert result["eval/against_length_ci"][0] < 0.5 < result["eval/against_length_ci"][1]  # 2 of 3 says little
