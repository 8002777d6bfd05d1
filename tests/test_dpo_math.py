"""DPO / IPO losses, their TRL-named metrics and answer encoding, against hand-computed numbers."""
import math

import pytest
import torch

from rlhf_lab import metrics as M
from rlhf_lab.algos.rl_math import dpo_loss, sequence_logps

# Two pairs. Policy log-probs: chosen (-1, -2), rejected (-3, -1); reference: -2 for all four answers.
C, R = torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0])
REF_C, REF_R = torch.tensor([-2.0, -2.0]), torch.tensor([-2.0, -2.0])
BETA = 0.5
# h = (c - r) - (ref_c - ref_r) = (2, -1); beta * h = (1, -0.5)


def test_sigmoid_loss_and_trl_metrics_by_hand():
    loss, stats = dpo_loss(C, R, REF_C, REF_R, BETA, "sigmoid")
    # -log sigmoid(1) = log(1 + e^-1) = 0.3132617; -log sigmoid(-0.5) = log(1 + e^0.5) = 0.9740770
    assert loss.item() == pytest.approx((math.log1p(math.exp(-1)) + math.log1p(math.exp(0.5))) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(0.6436693, abs=1e-6)
    # implicit rewards beta * (log pi - log ref): chosen (0.5, 0), rejected (-0.5, 0.5)
    assert stats[M.REWARDS_CHOSEN].item() == pytest.approx(0.25)
    assert stats[M.REWARDS_REJECTED].item() == pytest.approx(0.0)
    assert stats[M.REWARDS_MARGINS].item() == pytest.approx(0.25)  # mean of (1.0, -0.5)
    assert stats[M.REWARDS_ACCURACIES].item() == pytest.approx(0.5)  # first pair right, second wrong
    assert stats[M.LOGPS_CHOSEN].item() == pytest.approx(-1.5)
    assert stats[M.LOGPS_REJECTED].item() == pytest.approx(-2.0)
    assert set(stats) == {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                          "logps/chosen", "logps/rejected"}  # TRL's names


def test_sigmoid_gradient_by_hand():
    c = C.clone().requires_grad_(True)
    r = R.clone().requires_grad_(True)
    loss, _ = dpo_loss(c, r, REF_C, REF_R, BETA, "sigmoid")
    loss.backward()
    # d/dc of -log sigmoid(beta h) / N = -beta * sigmoid(-beta h) / N; the rejected side gets the opposite
    sig = torch.sigmoid(torch.tensor([-1.0, 0.5]))
    assert c.grad.tolist() == pytest.approx((-BETA * sig / 2).tolist(), abs=1e-6)
    assert r.grad.tolist() == pytest.approx((BETA * sig / 2).tolist(), abs=1e-6)
    assert c.grad[0].item() == pytest.approx(-0.0672353, abs=1e-6)


def test_ipo_loss_by_hand():
    loss, stats = dpo_loss(C, R, REF_C, REF_R, BETA, "ipo")
    # (h - 1 / (2 beta))^2 = (2 - 1)^2, (-1 - 1)^2 = 1, 4
    assert loss.item() == pytest.approx(2.5)
    assert stats[M.REWARDS_MARGINS].item() == pytest.approx(0.25)  # the same implicit rewards as DPO


def test_ipo_stops_pushing_at_its_target_margin():
    h_target = 1 / (2 * BETA)
    c = torch.tensor([h_target], requires_grad=True)
    loss, _ = dpo_loss(c, torch.zeros(1), torch.zeros(1), torch.zeros(1), BETA, "ipo")
    loss.backward()
    assert loss.item() == pytest.approx(0.0) and c.grad.item() == pytest.approx(0.0)
    c2 = torch.tensor([h_target], requires_grad=True)
    loss2, _ = dpo_loss(c2, torch.zeros(1), torch.zeros(1), torch.zeros(1), BETA, "sigmoid")
    loss2.backward()
    assert c2.grad.item() < 0  # DPO still pushes the margin up


def test_policy_equal_to_reference_reads_log2_and_no_accuracy():
    loss, stats = dpo_loss(REF_C, REF_R, REF_C, REF_R, 0.1)
    assert loss.item() == pytest.approx(math.log(2))
    assert stats[M.REWARDS_MARGINS].item() == 0.0
    assert stats[M.REWARDS_ACCURACIES].item() == 0.0  # ties count as wrong, as in TRL


def test_unknown_loss_type():
    with pytest.raises(ValueError):
        dpo_loss(C, R, REF_C, REF_R, BETA, "hinge")


def test_sequence_logps_sum_and_mean_over_the_mask():
    token_logps = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, -9.0], [-4.0, -4.0, -4.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert sequence_logps(token_logps, mask).tolist() == pytest.approx([-6.0, -1.0, 0.0])
    assert sequence_logps(token_logps, mask, average=True).tolist() == pytest.approx([-2.0, -0.5, 0.0])


def test_held_out_names_mirror_the_training_names():
    assert M.EVAL_DPO_ACCURACY == "eval/rewards/accuracies" and M.held_out(M.DPO_LOSS) == "eval/loss/dpo"


def test_config_rejects_bad_values():
    from rlhf_lab.config import ConfigError, DPOConfig, RewardConfig, SFTConfig

    for bad in (dict(beta=0), dict(beta=-1), dict(loss_type="hinge"), dict(epochs=0), dict(learning_rate=0),
                dict(batch_rankings=0), dict(eval_fraction=1.0)):
        with pytest.raises(ConfigError):
            DPOConfig(**bad)
    for bad in (dict(epochs=0), dict(batch_size=0), dict(learning_rate=2.0), dict(max_completion_length=0)):
        with pytest.raises(ConfigError):
            SFTConfig(**bad)
    assert DPOConfig().eval_fraction == RewardConfig().eval_fraction  # the same held-out prompts
    assert DPOConfig(loss_type="ipo").average_logps and not DPOConfig().average_logps


# ---- answer encoding (the real tokenizer, no model) ------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from rlhf_lab.config.model import DEFAULT_SYSTEM_PROMPT
    from rlhf_lab.modeling.default_model import ensure_default_model

    tok = AutoTokenizer.from_pretrained(ensure_default_model())
    tok.lab_system_prompt = DEFAULT_SYSTEM_PROMPT
    return tok


def test_answer_mask_covers_exactly_the_answer_and_its_eos(tokenizer):
    from rlhf_lab.algos.answers import encode_answers
    from rlhf_lab.generation.chat import chat_text

    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # why masks never come from ids != pad
    keys = [("Say hi.", "Hi there!", True), ("Name a long river please.", "The Nile", False)]
    ids, mask, answer = encode_answers(tokenizer, keys, "cpu", 256, 192)
    for row, (prompt, text, finished) in enumerate(keys):
        prompt_ids = tokenizer(chat_text(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(text, add_special_tokens=False)["input_ids"] + ([tokenizer.eos_token_id] if finished
                                                                               else [])
        real = ids[row][mask[row].bool()].tolist()
        assert real == prompt_ids + answer_ids  # left-padded: prompt, then answer, at the right end
        assert ids[row][answer[row].bool()].tolist() == answer_ids
        assert answer[row, -len(answer_ids):].sum().item() == len(answer_ids)
    # The padding of the shorter row uses the EOS id but is neither attended to nor trained on.
    assert (mask[0] == 0).any() and (answer[mask == 0] == 0).all()


def test_long_answers_are_cut_and_lose_their_eos_long_prompts_keep_their_end(tokenizer):
    from rlhf_lab.algos.answers import encode_answers

    ids, mask, answer = encode_answers(tokenizer, [("word " * 300, "one two three four five six", True)], "cpu",
                                       max_prompt_length=20, max_completion_length=3)
    assert answer.sum().item() == 3 and tokenizer.eos_token_id not in ids[0, -3:].tolist()
    assert mask.sum().item() == 23
    assert ids[0, 19].item() != tokenizer.eos_token_id  # the prompt's end (assistant tag) kept next to the answer
    assert "assistant" in tokenizer.decode(ids[0, :20])
