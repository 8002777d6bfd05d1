"""Where the reward head reads an answer: the pure read-out by hand, the answer tokens it averages over (from
tokenization, from PPO's rollouts, through the trunk cache's re-padding) and the read-out saved with the
adapter."""
import json

import pytest
import torch

from rlhf_lab.config import ConfigError, RewardConfig
from rlhf_lab.errors import BrokenAdapter
from rlhf_lab.generation.chat import tokenize_scored
from rlhf_lab.generation.decode import generate
from rlhf_lab.modeling import checkpoints
from rlhf_lab.modeling.adapters import REWARD
from rlhf_lab.modeling.readout import read_out
from rlhf_lab.modeling.trunk import Trunk
from rlhf_lab.runtime import model_thread as worker

SCORES = torch.tensor([[9.0, 1.0, 2.0, 6.0], [0.0, 4.0, 8.0, 3.0]])
MASK = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]])    # row 1 left-padded
ANSWER = torch.tensor([[0, 0, 1, 1], [0, 0, 0, 1]])  # the prompt's tokens are not the answer's


def test_read_out_by_hand():
    assert read_out(SCORES, MASK, ANSWER, "last").tolist() == [6.0, 3.0]
    assert read_out(SCORES, MASK, ANSWER, "mean").tolist() == [4.0, 3.0]   # (2 + 6) / 2; 3 / 1
    assert read_out(SCORES, MASK, ANSWER, "last+mean").tolist() == [5.0, 3.0]
    # a pad position inside the answer mask is not read; "last" needs no answer mask
    assert read_out(SCORES, MASK, torch.tensor([[0, 0, 1, 1], [1, 0, 0, 1]]), "mean").tolist() == [4.0, 3.0]
    assert read_out(SCORES, MASK, None, "last").tolist() == [6.0, 3.0]
    with pytest.raises(ValueError, match="answer's tokens"):
        read_out(SCORES, MASK, None, "mean")
    with pytest.raises(ValueError, match="unknown read-out"):
        read_out(SCORES, MASK, ANSWER, "first")


def test_config_refuses_an_unknown_read_out():
    with pytest.raises(ConfigError, match="readout must be one of"):
        RewardConfig(readout="max")


def test_the_answer_mask_covers_the_answer_and_its_eos_only(tiny_models):
    tok = tiny_models.tokenizer
    prompts, answers, cut = ["Why?", "A longer question here?", "Why?"], ["Because.", "Yes it is, truly.", "Cut"], \
        [False, False, True]
    ids, mask, answer = tokenize_scored(tok, prompts, answers, "cpu", 0, cut)
    for row, text, was_cut in zip(range(3), answers, cut):
        read = tok.decode(ids[row][answer[row].bool()])
        assert read == text + ("" if was_cut else tok.eos_token)
        assert torch.all(mask[row][answer[row].bool()] == 1)
    # cut to its last 4 tokens, the row keeps the answer's last tokens, still marked as answer
    ids4, mask4, answer4 = tokenize_scored(tok, prompts[1:2], answers[1:2], "cpu", 4, [False])
    assert ids4.shape[1] == 4 and answer4.tolist() == [[1, 1, 1, 1]]


def test_a_score_is_the_same_alone_and_re_padded_in_a_batch(split_models):
    m = split_models
    prompts, answers = ["Why?", "A much longer prompt than the other"], ["Because it is.", "No."]

    def run():
        torch.manual_seed(0)
        with torch.no_grad():
            m.reward_head.weight.normal_()
        ids, mask, answer = tokenize_scored(m.tokenizer, prompts, answers, m.device)
        alone = torch.cat([m.score(*tokenize_scored(m.tokenizer, [p], [a], m.device)[:2], REWARD,
                                   tokenize_scored(m.tokenizer, [p], [a], m.device)[2])
                           for p, a in zip(prompts, answers)])
        batch = m.score_from(Trunk.stack(m.trunk(ids, mask, answer).unstack(), m.tokenizer.pad_token_id))
        try:
            m.score(ids, mask, REWARD)  # no answer mask: a mean read-out must refuse, not guess
            refused = False
        except ValueError:
            refused = True
        m.readouts[REWARD] = "last"
        try:
            last = m.score(ids, mask, REWARD)
        finally:
            m.readouts[REWARD] = "last+mean"
        return alone, batch, last, refused

    assert m.readouts[REWARD] == "last+mean"
    with torch.no_grad():
        alone, batch, last, refused = worker.call(run)
    assert refused
    assert torch.allclose(alone, batch, atol=1e-5)
    assert not torch.allclose(batch, last, atol=1e-4)  # the mean really changes the score


def test_rollouts_mark_their_response_as_the_answer(split_models):
    m = split_models
    rollout = worker.call(generate, m.model, m.tokenizer, ["Hello there", "Why?"], 6, 1.0, 1.0, seed=3)
    trunk = worker.call(m.rollout_trunk, rollout)
    width = rollout.query_ids.shape[1]
    assert torch.equal(trunk.answer_mask[:, width:], rollout.response_mask)
    assert not trunk.answer_mask[:, :width].any()


def test_the_read_out_is_saved_with_the_adapter_and_old_ones_read_last(tiny_models, tmp_path):
    m = tiny_models
    folder = tmp_path / "reward"
    m.readouts[REWARD] = "mean"
    try:
        worker.call(checkpoints.save_adapter, m, REWARD, folder, {"note": "kept"})
        info = json.loads((folder / "info.json").read_text())
        assert info == {"note": "kept", "readout": "mean"}
        m.readouts[REWARD] = "last"
        worker.call(checkpoints.load_adapter, m, REWARD, folder)
        assert m.readouts[REWARD] == "mean"
        (folder / "info.json").write_text(json.dumps({"note": "saved before read-outs were recorded"}))
        assert checkpoints.readout_of(folder) == "last"
        (folder / "info.json").write_text(json.dumps({"readout": "max"}))
        with pytest.raises(BrokenAdapter, match="unknown read-out"):
            checkpoints.readout_of(folder)
    finally:
        m.readouts[REWARD] = "last+mean"
