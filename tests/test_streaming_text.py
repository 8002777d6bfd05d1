"""Streamed card text never ends in half a character; prompts too long are refused before any work."""

import pytest
import torch

from rlhf_lab.errors import ConfigError
from rlhf_lab.generation.chat import MAX_PROMPT_CHARS, check_prompt
from rlhf_lab.generation.decode import decode_partial


def test_decode_partial_holds_back_an_unfinished_emoji(tiny_models):
    tok = tiny_models.tokenizer
    ids = tok("Fast 💨 wind", add_special_tokens=False)["input_ids"]
    eos = {tok.eos_token_id}
    texts = [decode_partial(tok, torch.tensor([ids[:k]]), eos)[0] for k in range(1, len(ids) + 1)]
    assert all("\ufffd" not in t for t in texts)
    assert texts[-1] == "Fast 💨 wind" and any(t == "Fast" for t in texts[1:])  # held back, then shown whole
    # A finished row (EOS then padding) decodes the same way.
    row = torch.tensor([ids[:3] + [tok.eos_token_id, tok.eos_token_id]])
    assert decode_partial(tok, row, eos) == ["Fast"]


def test_an_overlong_prompt_is_refused_at_once_with_its_length(tiny_models):
    def no_tokenizer(*args, **kwargs):
        raise AssertionError("an over-long prompt must be refused before it is tokenized")

    with pytest.raises(ConfigError, match="20,000 characters"):
        check_prompt(no_tokenizer, tiny_models.model, "x" * 20_000, 64)
    assert check_prompt(tiny_models.tokenizer, tiny_models.model, "hi", 10) == "hi"
    assert MAX_PROMPT_CHARS >= 500
