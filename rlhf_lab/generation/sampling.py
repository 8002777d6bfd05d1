"""The one entry point for sampling (ranking cards, simulate, PPO rollouts, evaluate) and the choice of path.

On CPU the lab samples from a decode-only copy of the frozen base (fast_cpu.py): the 4-bit layers
dequantized once and kept as fp16 weights for fbgemm, 2.5-3.4x the speed of plain transformers fp32 on the
2-core AVX2 CPU measured (docs/benchmarks.md). It is used only where it reproduces the model's hidden states
on a probe batch; otherwise, on CUDA and for architectures it does not know, sampling runs the model itself.
Training always runs the 4-bit model.
"""
from __future__ import annotations

import threading
from typing import Callable, Sequence

import torch

from ..modeling.adapters import POLICY, LabModels
from ..modeling.trunk import probe_batch
from .decode import Rollout, generate


def sample(models: LabModels, prompts: Sequence[str], max_new_tokens: int, temperature: float, top_p: float,
           seed: int | None = None, adapter: str | None = POLICY, capture: bool = False,
           on_step: Callable[[torch.Tensor], None] | None = None,
           stop_event: threading.Event | None = None, suppress_eos: bool = False) -> Rollout:
    """One completion per prompt from `adapter` (None: the reference, adapters off). With capture, the
    Rollout keeps the hidden states entering the first adapted layer (PPO reuses them as its trunk)."""
    fast = getattr(models, "fast_decoder", None)
    if fast is not None:
        return fast.generate(models.tokenizer, prompts, max_new_tokens, temperature, top_p, seed=seed,
                             adapter=adapter, capture_layer=(models.cut or None) if capture else None,
                             on_step=on_step, stop_event=stop_event, suppress_eos=suppress_eos)
    with models.reference() if adapter is None else models.adapter(adapter):
        return generate(models.model, models.tokenizer, prompts, max_new_tokens, temperature, top_p, seed=seed,
                        on_step=on_step, stop_event=stop_event, capture=models.trunk_top() if capture else None,
                        suppress_eos=suppress_eos)


@torch.no_grad()
def choose_decoder(models: LabModels, enabled: bool = True) -> str:
    """Attach the fast CPU decoder to `models` where it is faithful; returns a line saying which path samples."""
    models.fast_decoder = None
    if not enabled:
        return "sampling: the model's own forward (fast decoding switched off)"
    if models.device.type != "cpu":
        return f"sampling: the model's own forward on {models.device.type}"
    from .fast_cpu import FastDecoder, UnsupportedModel

    try:
        fast = FastDecoder.build(models)
    except UnsupportedModel as err:
        return f"sampling: the model's own forward ({err})"
    vocab = int(models.base_model.get_input_embeddings().num_embeddings)
    ids, mask = probe_batch(vocab, models.device)
    with models.reference():
        expected = models.hidden(ids, mask)
    got = fast.hidden(ids, mask)
    real = mask.bool()
    error = (expected[real] - got[real]).abs().max().item()
    scale = expected[real].abs().max().item()
    # fp16 weights move a hidden state by ~1e-3 of its scale; a wrong layer (RoPE, masks) moves it by ~1.
    if not error <= 2e-2 * max(1.0, scale):
        return f"sampling: the model's own forward (the fast copy differed by {error:.2g} on a probe)"
    models.fast_decoder = fast
    return ("sampling: fast CPU decode copy of the frozen base, fp16 weights (fbgemm) "
            f"(+{fast.bytes() / 2**20:.0f} MB; training stays {models.cfg.precision})")
