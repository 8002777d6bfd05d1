"""The fast CPU decode copy reproduces the model: hidden states, LoRA, reference, sampling and the PPO trunk."""
import pytest
import torch

from rlhf_lab.generation.chat import encode_prompts
from rlhf_lab.generation.decode import generate
from rlhf_lab.generation.fast_cpu import FastDecoder
from rlhf_lab.generation.sampling import choose_decoder, sample
from rlhf_lab.modeling.adapters import POLICY
from rlhf_lab.runtime import model_thread as worker

PROMPTS = ["Hello there", "A much longer prompt than the first one"]


def _random_lora(models, adapter=POLICY):
    gen = torch.Generator().manual_seed(3)
    saved = models.snapshot(adapter)
    with torch.no_grad():
        for p in models.lora_params(adapter, "lora_B"):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return saved


def test_fast_copy_matches_the_model_with_and_without_lora(split_models):
    m = split_models

    def run():
        fast = FastDecoder.build(m, kind="fp32", head="fp32")
        ids, mask = encode_prompts(m.tokenizer, PROMPTS, m.device)
        saved = _random_lora(m)
        try:
            with m.reference():
                ref = m.hidden(ids, mask)
            with m.adapter(POLICY):
                pol = m.hidden(ids, mask)
            return ref, pol, fast.hidden(ids, mask, None), fast.hidden(ids, mask, POLICY), mask.bool()
        finally:
            m.restore(POLICY, saved)

    ref, pol, fast_ref, fast_pol, real = worker.call(run)
    assert (ref[real] - pol[real]).abs().max() > 1e-3  # the LoRA changes the output: the check can fail
    assert torch.allclose(fast_ref[real], ref[real], atol=1e-4)
    assert torch.allclose(fast_pol[real], pol[real], atol=1e-4)


def test_fast_sampling_equals_model_sampling_in_fp32(split_models):
    """Same seed, same sampler, fp32 weights: the fast path draws the same tokens and keeps the same trunk."""
    m = split_models

    def run():
        m.fast_decoder = FastDecoder.build(m, kind="fp32", head="fp32")
        saved = _random_lora(m)
        try:
            fast = sample(m, PROMPTS, 12, 1.0, 1.0, seed=4, adapter=POLICY, capture=True)
            fast_ref = sample(m, PROMPTS, 12, 1.0, 1.0, seed=4, adapter=None)
            m.fast_decoder = None
            slow = sample(m, PROMPTS, 12, 1.0, 1.0, seed=4, adapter=POLICY, capture=True)
            slow_ref = sample(m, PROMPTS, 12, 1.0, 1.0, seed=4, adapter=None)
        finally:
            m.restore(POLICY, saved)
            m.fast_decoder = None
        return fast, slow, fast_ref, slow_ref

    fast, slow, fast_ref, slow_ref = worker.call(run)
    assert torch.equal(fast.response_ids, slow.response_ids) and fast.texts == slow.texts
    assert torch.equal(fast.response_mask, slow.response_mask)
    assert torch.equal(fast_ref.response_ids, slow_ref.response_ids)
    assert fast.trunk_hidden.shape == slow.trunk_hidden.shape
    real = fast.attention_mask.bool()
    assert torch.allclose(fast.trunk_hidden[real], slow.trunk_hidden[real], atol=1e-4)


def test_choose_decoder_attaches_the_fp16_copy_and_says_so(split_models):
    m = split_models
    note = worker.call(choose_decoder, m, True)
    try:
        assert m.fast_decoder is not None and "fp16" in note
        rollout = worker.call(sample, m, PROMPTS, 6, 1.0, 1.0, 1, POLICY)
        assert rollout.response_ids.shape == (2, rollout.response_ids.shape[1]) and len(rollout.texts) == 2
        off = worker.call(choose_decoder, m, False)
        assert m.fast_decoder is None and "switched off" in off
    finally:
        m.fast_decoder = None


def test_decode_loop_and_plain_generate_agree_on_masks(split_models):
    m = split_models
    plain = worker.call(generate, m.model, m.tokenizer, PROMPTS, 5, 1.0, 1.0, seed=2)
    assert plain.response_mask.shape == plain.response_ids.shape
    with pytest.raises(ValueError):
        from rlhf_lab.generation.fast_cpu import make_linear
        make_linear(torch.zeros(2, 2), "int3")
