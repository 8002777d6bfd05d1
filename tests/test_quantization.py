"""The AVX512-BF16 switch: RLHF_LAB_CPU_BF16=0 runs an AVX-512 machine down the AVX2-only path (`make test-avx2`)."""
import pytest
import torch

from rlhf_lab.modeling import quantization


@pytest.fixture
def forced_off(monkeypatch):
    monkeypatch.setenv("RLHF_LAB_CPU_BF16", "0")


def test_forcing_bf16_off_gives_fp32_compute(forced_off):
    assert quantization.cpu_has_bf16() is False
    cfg = quantization.quantization_config("4bit", torch.device("cpu"))
    assert cfg.bnb_4bit_compute_dtype == torch.float32 and cfg.bnb_4bit_quant_type == "nf4"


def test_forcing_bf16_off_keeps_every_layer_unpacked(forced_off):
    bnb = pytest.importorskip("bitsandbytes")
    layers = [bnb.nn.Linear4bit(8, 8, quant_type="nf4") for _ in range(3)]
    assert quantization.allow_fast_4bit_sampling(layers) == 3  # every layer was told, even where it could pack
    assert not any(layer.support_avx512bf16_for_cpu for layer in layers)


def test_cuda_keeps_bf16_compute_whatever_the_cpu(forced_off):
    cfg = quantization.quantization_config("4bit", torch.device("cuda"))
    assert cfg.bnb_4bit_compute_dtype == torch.bfloat16


def test_other_values_leave_the_hardware_to_decide(monkeypatch):
    monkeypatch.delenv("RLHF_LAB_CPU_BF16", raising=False)
    detected = quantization.cpu_has_bf16()
    monkeypatch.setenv("RLHF_LAB_CPU_BF16", "1")
    assert quantization.cpu_has_bf16() == detected
