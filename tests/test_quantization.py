"""The AVX512-BF16 switch: RLHF_LAB_CPU_BF16=0 runs an AVX512-BF16 machine down the lab's AVX2-only choices,
and RLHF_LAB_CPU_BF16=compute gives any CPU that path's bf16 compute.

bitsandbytes' detection is replaced by "this CPU has AVX512-BF16", so the switch is tested on every CPU."""
import pytest
import torch

from rlhf_lab.modeling import quantization

bnb = pytest.importorskip("bitsandbytes")


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(bnb.functional, "has_avx512bf16", lambda: True)
    monkeypatch.delenv("RLHF_LAB_CPU_BF16", raising=False)
    return monkeypatch


def layers():
    return [bnb.nn.Linear4bit(8, 8, quant_type="nf4") for _ in range(3)]


def test_an_avx512_bf16_cpu_gets_bf16_compute_and_packed_sampling(bf16_cpu):
    assert quantization.cpu_has_bf16() is True
    assert quantization.quantization_config("4bit", torch.device("cpu")).bnb_4bit_compute_dtype == torch.bfloat16
    linears = layers()
    assert quantization.allow_fast_4bit_sampling(linears) == 3
    assert all(layer.support_avx512bf16_for_cpu for layer in linears)


@pytest.mark.parametrize("value", ["0", "false", "OFF", " no "])
def test_forcing_it_off_gives_fp32_compute_and_no_packed_layer(bf16_cpu, value):
    bf16_cpu.setenv("RLHF_LAB_CPU_BF16", value)
    assert quantization.cpu_has_bf16() is False
    cfg = quantization.quantization_config("4bit", torch.device("cpu"))
    assert cfg.bnb_4bit_compute_dtype == torch.float32 and cfg.bnb_4bit_quant_type == "nf4"
    linears = layers()
    assert quantization.allow_fast_4bit_sampling(linears) == 3  # every layer was told, though it could pack
    assert not any(layer.support_avx512bf16_for_cpu for layer in linears)
    assert quantization.quantization_config("4bit", torch.device("cuda")).bnb_4bit_compute_dtype == torch.bfloat16


def test_other_values_leave_it_to_the_hardware(bf16_cpu):
    bf16_cpu.setenv("RLHF_LAB_CPU_BF16", "1")
    assert quantization.cpu_has_bf16() is True
    bf16_cpu.setattr(bnb.functional, "has_avx512bf16", lambda: False)
    assert quantization.cpu_has_bf16() is False


def test_compute_gives_bf16_matmuls_on_any_cpu_but_packs_nothing_without_the_instructions(monkeypatch):
    """RLHF_LAB_CPU_BF16=compute (`make test-bf16`): an AVX2-only CPU runs the learning tests in the AVX512-BF16
    path's bf16 numerics; the packed kernel needs the instructions, so no layer may pack."""
    monkeypatch.setattr(bnb.functional, "has_avx512bf16", lambda: False)
    monkeypatch.setenv("RLHF_LAB_CPU_BF16", "compute")
    assert quantization.cpu_bf16_compute() is True and quantization.cpu_has_bf16() is False
    assert quantization.quantization_config("4bit", torch.device("cpu")).bnb_4bit_compute_dtype == torch.bfloat16
    linears = layers()
    assert quantization.allow_fast_4bit_sampling(linears) == 3
    assert not any(layer.support_avx512bf16_for_cpu for layer in linears)
    monkeypatch.delenv("RLHF_LAB_CPU_BF16")
    assert quantization.cpu_bf16_compute() is False


def test_compute_on_an_avx512_bf16_cpu_is_the_same_as_unset(bf16_cpu):
    bf16_cpu.setenv("RLHF_LAB_CPU_BF16", "compute")
    assert quantization.cpu_bf16_compute() is True and quantization.cpu_has_bf16() is True
    linears = layers()
    assert quantization.allow_fast_4bit_sampling(linears) == 3
    assert all(layer.support_avx512bf16_for_cpu for layer in linears)
