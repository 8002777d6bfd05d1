"""The story panel's lines from hand-made numbers: each number lands in the sentence a presenter reads."""
from rlhf_lab import story


def ppo_row(step, score, kl, length, finished, gold=None, round_=1):
    row = {"phase": "ppo", "step": step, "round": round_, "objective/scores": score, "objective/kl": kl,
           "val/response_length": length, "val/finished_frac": finished}
    if gold is not None:
        row["objective/gold_scores"] = gold
    return row


def test_rankings_line_counts_and_who_ranked():
    assert story.rankings_line({"rankings": 0, "pairs": 0}).startswith("Nothing ranked yet")
    assert story.rankings_line({"rankings": 32, "pairs": 77}) == (
        "You ranked answers to 32 prompts: 77 pairs for the reward model to learn from.")
    assert story.rankings_line({"rankings": 1, "pairs": 3}, "concise").startswith(
        "The judge “concise” ranked answers to 1 prompt: 3 pairs")


def test_reward_lines_agreement_chance_and_length_bias():
    rm = {"eval/reward_accuracy": 31 / 40, "pairs_eval": 40, "eval/accuracy_ci": [0.62, 0.88],
          "reward/length_r2": 0.65}
    lines = story.reward_lines(rm)
    assert lines[0] == ("Your reward model agrees with you on 31 of 40 pairs it never saw (78%; a coin toss "
                        "would get 50%).")
    assert lines[1] == "Answer length alone explains 65% of its scores: it may mostly reward length."
    weak = story.reward_lines({"eval/reward_accuracy": 0.6, "pairs_eval": 5, "eval/accuracy_ci": [0.23, 0.88],
                               "reward/length_r2": 0.1}, judge="concise")
    assert "agrees with the judge on 3 of 5" in weak[0] and "coin toss yet" in weak[1] and len(weak) == 2
    assert story.reward_lines(None) == [] and story.reward_lines({"eval/reward_accuracy": None}) == []
    lucky = story.reward_lines({**rm, "eval/reward_accuracy_lopo": 27 / 40})  # 4 pairs owed to the epoch pick
    assert lucky[1] == ("Part of that was a lucky choice of epoch: scored at the epoch the other held-out prompts "
                        "chose, it agrees on 27 of 40 (68%).")
    assert len(story.reward_lines({**rm, "eval/reward_accuracy_lopo": 29 / 40})) == 2  # 2 pairs: no line
    length_only = story.reward_lines({**rm, "eval/reward_accuracy_against_length": 0.1, "pairs_against_length": 10,
                                      "eval/against_length_ci": [0.02, 0.40]})
    assert length_only[2] == "Where length points the wrong way (10 held-out pairs) it is right on 1: mostly length."
    # the verdict follows the interval the trainer gives (Wilson: 13 of 16 -> 0.57-0.93; 7 of 10 -> 0.40-0.89)
    reads = story.reward_lines({**rm, "eval/reward_accuracy_against_length": 13 / 16, "pairs_against_length": 16,
                                "eval/against_length_ci": [0.57, 0.93]})
    assert reads[2].endswith("it is right on 13: it reads more than length.")
    unsure = story.reward_lines({**rm, "eval/reward_accuracy_against_length": 0.7, "pairs_against_length": 10,
                                 "eval/against_length_ci": [0.40, 0.89]})
    assert unsure[2].endswith("it is right on 7: no better than chance, so far.")
    few = story.reward_lines({**rm, "eval/reward_accuracy_against_length": 1.0, "pairs_against_length": 3})
    assert len(few) == 2  # 3 of 3 is no evidence either way: no sentence


def test_reward_tab_says_how_it_does_where_length_points_the_wrong_way():
    from rlhf_lab.ui.reward_tab import against_length_line
    rm = {"eval/reward_accuracy_against_length": 0.25, "pairs_against_length": 8, "length_rule": "longer",
          "eval/length_rule_accuracy": 0.66}
    assert against_length_line(rm) == (
        '\n\nWhere length points the wrong way (8 held-out pairs, where "prefer the longer answer" is wrong; '
        'that rule alone gets 66% overall), the reward model is right on 2 of 8: 25%.')
    assert against_length_line({"pairs_against_length": 0, "eval/reward_accuracy_against_length": None}) == ""


def test_reward_tab_says_the_held_out_pairs_chose_the_epoch():
    from rlhf_lab.ui.reward_tab import chosen_epoch_line
    assert chosen_epoch_line({"eval/reward_accuracy": 0.875, "eval/reward_accuracy_lopo": 0.84375}) == (
        "\n\nThese pairs also chose which epoch to keep (the lowest held-out loss). Scoring each held-out "
        "prompt at the epoch the other held-out prompts choose instead: 84%.")
    assert chosen_epoch_line({"eval/reward_accuracy": 1.0}) == ""  # saved before this was measured


def test_ppo_lines_reward_kl_length_finished_gold():
    # First 3 steps: score mean 0.0, length 40, finished 0.2; last 3: score 1.2, KL 3.1, length 24, finished 0.9.
    rows = [ppo_row(1, -0.1, 0.1, 41, 0.1, -3.0), ppo_row(2, 0.0, 0.3, 40, 0.2, -3.1),
            ppo_row(3, 0.1, 0.5, 39, 0.3, -2.9), ppo_row(4, 1.1, 2.9, 25, 0.8, -1.8),
            ppo_row(5, 1.2, 3.1, 24, 0.9, -1.7), ppo_row(6, 1.3, 3.3, 23, 1.0, -1.6)]
    lines = story.ppo_lines(rows)
    assert lines == ["PPO raised the reward by 1.2 while drifting 3.1 nats from the original model.",
                     "Answers got 40% shorter (40 → 24 tokens) — is that what you wanted?",
                     "90% of answers now finish, against 20% at the start.",
                     "The judge's own score went from -3.00 to -1.70."]


def test_ppo_lines_only_latest_round_and_gaming_the_reward_model():
    old = [ppo_row(1, 5.0, 9.0, 90, 0.5, round_=1), ppo_row(2, 6.0, 9.0, 90, 0.5, round_=1)]
    rows = old + [ppo_row(3, 0.0, 1.0, 40, 0.5, gold=-1.0, round_=2), ppo_row(4, 2.0, 4.0, 41, 0.55, gold=-5.0,
                                                                             round_=2)]
    lines = story.ppo_lines(rows)
    assert lines[0] == "PPO raised the reward by 2.0 while drifting 4.0 nats from the original model."
    assert lines[1] == "Answer length stayed about the same (40 → 41 tokens)."
    assert lines[2] == ("The judge's own score went from -1.00 to -5.00, falling while the reward model's rose: "
                        "PPO is gaming the reward model.")
    assert len(lines) == 3  # finished share moved by 5 points only: no line
    assert story.ppo_lines([]) == [] and story.ppo_lines(rows[:1]) == []


def test_a_stop_at_the_kl_limit_is_told_for_its_own_run_only():
    rows = [ppo_row(1, 0.0, 1.0, 40, 0.5, round_=2), ppo_row(2, 1.0, 3.0, 40, 0.5, round_=2)]
    said = "stopped at the KL limit: the answers after step 2 were 5.7 nats from the reference, past 4, ..."
    assert story.ppo_lines(rows, {"round": 2, "message": said})[-1] == "PPO " + said
    assert story.ppo_lines(rows, {"round": 1, "message": said}) == story.ppo_lines(rows)  # an older run's stop
    assert len(story.ppo_lines(rows)) == 2 and story.ppo_lines([], {"round": 2, "message": said}) == []


def test_longer_answers_and_lowered_reward():
    rows = [ppo_row(1, 1.0, 0.2, 20, 0.5), ppo_row(2, 0.5, 0.4, 30, 0.5)]
    assert story.ppo_lines(rows)[:2] == [
        "PPO lowered the reward by 0.5 while drifting 0.4 nats from the original model.",
        "Answers got 50% longer (20 → 30 tokens) — is that what you wanted?"]
    flat = [ppo_row(1, 1.0, 0.0, 20, 0.5), ppo_row(2, 0.98, 0.01, 20, 0.5)]
    assert story.ppo_lines(flat)[0] == ("PPO left the reward where it was while drifting 0.0 nats from the "
                                        "original model.")


def test_dpo_and_evaluation_lines_and_the_whole_story():
    dpo = [{"phase": "dpo", "step": 1, "round": 1, "rewards/accuracies": 0.5},
           {"phase": "dpo", "step": 2, "round": 1, "rewards/accuracies": 0.75}]
    assert story.dpo_lines(dpo) == ["DPO: the policy now prefers the chosen answer in 75% of training pairs "
                                    "(from 50%)."]
    # As the story reads them, from a metrics DataFrame: the held-out rows hold NaN for training metrics.
    nan = float("nan")
    framed = [{"step": 0, "round": 1, "rewards/accuracies": nan, "eval/rewards/accuracies": 0.4}, *dpo,
              {"step": 2, "round": 1, "rewards/accuracies": nan, "eval/rewards/accuracies": 0.6}]
    assert story.dpo_lines(framed) == story.dpo_lines(dpo)
    ev = {"judge": "concise", "prompts": 16, "policy_score": -2.5625, "reference_score": -3.5625, "kl": 3.49}
    assert story.evaluation_line(ev) == ("On 16 fresh samples the judge “concise” scores the new policy -2.56 "
                                         "and the original model -3.56 (KL 3.5 nats).")
    lines = story.story({"rankings": 2, "pairs": 6}, {"eval/reward_accuracy": 1.0, "pairs_eval": 2},
                        [ppo_row(1, 0, 0.1, 30, 0.5), ppo_row(2, 1, 0.2, 30, 0.5)], ev, "concise", dpo)
    assert [x.split()[0] for x in lines] == ["The", "Your", "PPO", "Answer", "DPO:", "On"]
    assert story.story({"rankings": 0}) == [story.rankings_line({})]
    assert story.evaluation_line({**ev, "kl": -0.04}).endswith("(KL 0.0 nats).")
    # with the paired interval evaluate keeps: its sign decides the words
    assert story.evaluation_line({**ev, "score_gain": 1.0, "score_gain_ci": [0.25, 1.75]}).endswith(
        "(KL 3.5 nats). The difference, +1.00, is more than sampling noise (95% interval +0.25 to +1.75 over "
        "the same prompts).")
    assert "is within sampling noise (95% interval -0.25" in story.evaluation_line(
        {**ev, "score_gain": 1.0, "score_gain_ci": [-0.25, 2.25]})
    assert "is a loss beyond sampling noise" in story.evaluation_line(
        {**ev, "score_gain": -1.0, "score_gain_ci": [-1.5, -0.5]})
    assert story.evaluation_line({**ev, "score_gain": 1.0, "score_gain_ci": [None, None]}).endswith("nats).")


def test_evaluation_says_when_answers_got_longer_or_stopped_finishing():
    # the mention_you scenario's evaluation (2026-12-06): longer answers, fewer of them finished
    ev = {"judge": "mentions:you", "prompts": 16, "policy_score": 1.875, "reference_score": 0.6875, "kl": 1.5,
          "policy_length": 77.4375, "reference_length": 54.3125, "policy_finished": 0.5625,
          "reference_finished": 0.875}
    assert story.evaluation_length_line(ev) == (
        "In those samples the new policy's answers are 43% longer than the original model's (54 → 77 tokens), "
        "and 9 of 16 finish against 14 of 16 — is that what you wanted?")
    assert story.story({"rankings": 2}, evaluation=ev)[-2:] == [story.evaluation_line(ev),
                                                                 story.evaluation_length_line(ev)]
    # 40 -> 30 tokens, all finished: shorter only
    assert story.evaluation_length_line({**ev, "policy_length": 30.0, "reference_length": 40.0,
                                         "policy_finished": 1.0, "reference_finished": 1.0}) == (
        "In those samples the new policy's answers are 25% shorter than the original model's (40 → 30 tokens) "
        "— is that what you wanted?")
    # within a tenth of the length; 13 of 16 finished against 15 (the cheerful scenario's): 2 answers but
    # 12.5 points, within what 16 samples vary by, so nothing to ask
    same = {**ev, "policy_length": 58.0, "reference_length": 54.3125, "policy_finished": 0.8125,
            "reference_finished": 0.9375}
    assert story.evaluation_length_line(same) is None
    assert story.evaluation_length_line({**same, "policy_finished": 0.75}) == (  # 3 answers, 18.75 points
        "In those samples 12 of the new policy's 16 answers finish against 15 of the original model's — is that "
        "what you wanted?")
    # 2 of 4 against 4 of 4: 50 points, 2 answers; 18 of 20 against 20: 2 answers, 10 points
    assert story.evaluation_length_line({**same, "prompts": 4, "policy_finished": 0.5, "reference_finished": 1.0})
    assert story.evaluation_length_line({**same, "prompts": 20, "policy_finished": 0.9,
                                         "reference_finished": 1.0}) is None
    # samples without a judge (report --samples): the line stands on its own
    unjudged = {**ev, "policy_score": None, "reference_score": None}
    assert story.evaluation_line(unjudged) is None
    assert story.evaluation_length_line(unjudged).startswith("On 16 fresh samples the new policy's answers are 43% ")
    # an evaluation saved without lengths, or none at all
    assert story.evaluation_length_line({k: v for k, v in ev.items() if k != "policy_length"}) is None
    assert story.evaluation_length_line(None) is None
