"""Generation on a tiny random llama: shapes and explicit masks."""
import pytest
import torch

from rlhf_lab.runtime import model_thread as worker
from rlhf_lab.config import ConfigError, GenerationConfig
from rlhf_lab.generation.chat import check_prompt
from rlhf_lab.generation.decode import generate, response_mask_from


def test_response_mask_through_first_eos_even_when_pad_equals_eos():
    eos = 2
    ids = torch.tensor([[5, 6, 2, 2, 2], [5, 6, 7, 8, 9], [2, 2, 2, 2, 2]])
    mask, truncated = response_mask_from(ids, {eos})
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert truncated.tolist() == [False, True, False]


def test_generate_k_completions_with_masks(tiny_models):
    m = tiny_models
    rollout = worker.call(generate, m.model, m.tokenizer, ["Hello there", "A much longer prompt than the first"] * 2,
                          12, 1.0, 1.0, seed=3)
    B, R = rollout.response_ids.shape
    assert B == 4 and R <= 12
    assert rollout.query_mask.shape == rollout.query_ids.shape
    # left padding: the shorter prompt has zeros on the left, never on the right
    assert rollout.query_mask[0, 0] == 0 and rollout.query_mask[:, -1].all()
    assert rollout.attention_mask.shape == rollout.input_ids.shape
    for row in range(B):
        mask = rollout.response_mask[row]
        n = int(mask.sum())
        assert mask[:n].all() and not mask[n:].any()  # a prefix
        if not rollout.truncated[row]:
            assert rollout.response_ids[row, n - 1].item() == m.tokenizer.eos_token_id
    assert len(rollout.texts) == 4


def test_same_seed_same_samples(tiny_models):
    m = tiny_models
    a = worker.call(generate, m.model, m.tokenizer, ["x"] * 3, 8, 1.0, 1.0, seed=7)
    b = worker.call(generate, m.model, m.tokenizer, ["x"] * 3, 8, 1.0, 1.0, seed=7)
    assert torch.equal(a.response_ids, b.response_ids)


def test_generation_config_validation():
    for kwargs in ({"k": 0}, {"k": 17}, {"max_new_tokens": 0}, {"max_new_tokens": 100000}, {"temperature": 0},
                   {"temperature": -1}, {"top_p": 0}):
        with pytest.raises(ConfigError):
            GenerationConfig(**kwargs)


def test_prompt_checks(tiny_models):
    m = tiny_models
    with pytest.raises(ConfigError, match="empty"):
        check_prompt(m.tokenizer, m.model, "   ", 10)
    with pytest.raises(ConfigError, match="context"):
        check_prompt(m.tokenizer, m.model, "word " * 400, 10)  # tiny model context is 256
    assert check_prompt(m.tokenizer, m.model, "  hi  ", 10) == "hi"


def test_sample_next_draws_from_the_softmax_with_temperature_and_top_p():
    from rlhf_lab.generation.decode import sample_next

    torch.manual_seed(0)
    n = 40000
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, float("-inf")]]).repeat(n, 1)

    def freq(temperature, top_p):
        return torch.bincount(sample_next(logits, temperature, top_p), minlength=5).float() / n

    expected = torch.softmax(logits[0], -1)  # [0.644, 0.237, 0.087, 0.032, 0]
    assert torch.allclose(freq(1.0, 1.0), expected, atol=0.01)
    assert torch.allclose(freq(0.5, 1.0), torch.softmax(logits[0] / 0.5, -1), atol=0.01)
    # top_p 0.7: the smallest set reaching 0.7 is tokens {0, 1}, renormalised
    kept = expected[:2] / expected[:2].sum()
    assert torch.allclose(freq(1.0, 0.7), torch.cat([kept, torch.zeros(3)]), atol=0.01)
    assert freq(1.0, 1.0)[4] == 0  # a zero-probability token is never drawn
