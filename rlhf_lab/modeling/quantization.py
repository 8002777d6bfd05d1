"""bitsandbytes 4-bit on CPU and CUDA: the quantization config and the workarounds for its CPU repacking."""
from __future__ import annotations

import os

import torch
from torch import nn


def _setting() -> str:
    return os.environ.get("RLHF_LAB_CPU_BF16", "").strip().lower()


def cpu_has_bf16() -> bool:
    """Whether the lab takes bitsandbytes' AVX512-BF16 CPU path (bf16 compute, packed 4-bit layers).
    RLHF_LAB_CPU_BF16=0 (or false / off / no) turns it off, so an AVX512-BF16 machine runs the lab's AVX2-only
    choices (`make test-avx2`)."""
    if _setting() in ("0", "false", "off", "no"):
        return False
    try:
        from bitsandbytes.functional import has_avx512bf16
        return bool(has_avx512bf16())
    except ImportError:
        return False


def cpu_bf16_compute() -> bool:
    """Whether 4-bit layers compute in bf16 on this CPU: where it has AVX512-BF16, or on any CPU with
    RLHF_LAB_CPU_BF16=compute. That one is for checks, not use: it gives a CPU without AVX512-BF16 roughly the
    numerics of that path (bf16 matmuls, through torch's emulation rather than the AVX512-BF16 kernels, at
    several times the cost; not its packed layers, which need the instructions) for `make test-bf16`. Packing
    still follows the hardware, so on a CPU with AVX512-BF16 `compute` is the same as leaving it unset."""
    return _setting() == "compute" or cpu_has_bf16()


def quantization_config(precision: str, device: torch.device):
    if precision != "4bit":
        return None
    from transformers import BitsAndBytesConfig

    # bf16 matmuls where the hardware has them (CUDA; CPUs with AVX512-BF16/AMX, where the PPO minibatch passes
    # ran ~15% faster than fp32, measured), fp32 elsewhere unless RLHF_LAB_CPU_BF16=compute. Activations
    # between layers stay fp32 on CPU.
    compute = torch.bfloat16 if device.type == "cuda" or cpu_bf16_compute() else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)


def keep_4bit_weights_differentiable(model: nn.Module) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for its CPU inference kernel (all layers, at load).

    On CPUs with AVX512-BF16, a Linear4bit layer that runs once in eval mode without grad (every generate)
    converts its weight for good to a packed layout whose kernel has no backward. Every later forward then
    goes through it and gradients stop there: measured here, the input-gradient norm fell from ~1250 to 2.7
    after one generate, and PPO did not learn. LabModels turns the packed kernel back on only below the
    adapted layers (allow_fast_4bit_sampling), where no gradient ever flows. Returns the layers switched.
    """
    return _set_4bit_packing(model.modules(), False)


def allow_fast_4bit_sampling(layers) -> int:
    """Let bitsandbytes pack these layers' 4-bit weights for its CPU inference kernel.

    Only for layers no gradient passes through (below every adapter). Sampling is ~40% faster there (a
    decode step of the 8-row PPO batch: 38 ms packed vs 62 ms through dequantize-and-matmul, measured).
    """
    return _set_4bit_packing([m for layer in layers for m in layer.modules()], True)


def _set_4bit_packing(modules, allowed: bool) -> int:
    try:
        import bitsandbytes as bnb
    except ImportError:
        return 0
    packable = allowed and cpu_has_bf16()
    switched = 0
    for module in modules:
        if isinstance(module, bnb.nn.Linear4bit) and hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = packable
            switched += 1
    return switched
