"""Shared fixtures: a tiny random llama for fast math checks, the embedded model for real checks."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def make_tiny_model_folder(folder: Path, layers: int = 2) -> Path:
    """Save a tiny random llama with a real tokenizer (the embedded model's) as safetensors."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rlhf_lab.modeling.default_model import ensure_default_model

    tokenizer = AutoTokenizer.from_pretrained(ensure_default_model())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model_folder(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_models(tiny_model_dir):
    from rlhf_lab.runtime import model_thread as worker
    from rlhf_lab.config import ModelConfig
    from rlhf_lab.modeling.adapters import load_lab_models

    return worker.call(load_lab_models, ModelConfig(model=str(tiny_model_dir), precision="fp32", lora_r=4), 4)


@pytest.fixture
def tiny_lab_factory(tiny_model_dir, tiny_models, tmp_path):
    """Labs over the shared tiny models and one sessions folder, each as if the app were opened again:
    make() opens session "s" (created if missing), make(None) opens none."""
    from rlhf_lab.config import ModelConfig
    from rlhf_lab.lab import Lab

    def make(session: str | None = "s"):
        lab = Lab(tmp_path / "sessions", model_cfg=ModelConfig(model=str(tiny_model_dir), precision="fp32", lora_r=4))
        lab.models, lab.model_cfg = tiny_models, lab.default_model_cfg
        if session is not None:
            lab.open_session(session, create=True)
        return lab

    return make


@pytest.fixture(scope="session")
def split_models(tmp_path_factory):
    """A 4-layer tiny llama with both adapters on the top 2 layers: passes split after layer 2."""
    from rlhf_lab.runtime import model_thread as worker
    from rlhf_lab.config import ModelConfig
    from rlhf_lab.modeling.adapters import load_lab_models

    folder = make_tiny_model_folder(tmp_path_factory.mktemp("tiny-llama-4"), layers=4)
    cfg = ModelConfig(model=str(folder), precision="fp32", lora_r=4, lora_layers=2)
    return worker.call(load_lab_models, cfg, 4, None, 2)


@pytest.fixture(scope="session")
def real_lab_factory():
    """Labs over the embedded model share one loaded model (loading is the slow part)."""
    from rlhf_lab.lab import Lab

    shared = {}

    def make(sessions_dir):
        lab = Lab(sessions_dir)
        if "models" in shared:
            lab.models, lab.model_cfg = shared["models"], shared["cfg"]
        else:
            lab.load_model()
            shared["models"], shared["cfg"] = lab.models, lab.model_cfg
        return lab

    return make


@pytest.fixture(scope="session")
def exported(tmp_path_factory, tiny_model_dir):
    """A session on the tiny llama with rankings, demonstrations and random adapters, and its export bundle."""
    from export_session import build

    return build(tmp_path_factory.mktemp("export"), tiny_model_dir)
