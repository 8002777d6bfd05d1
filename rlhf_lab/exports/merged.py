"""Full models (policy_merged/, reward_model/): the LoRA merged into a fp32 copy of the base, saved as
safetensors with the tokenizer and its chat template, loadable by any `from_pretrained` and engine CLI.

Merged models are what reproduce the lab elsewhere: the embedded default base is a dequantized GGUF file, so
an adapter alone, applied to the hub's weights, gives a slightly different model.
"""
from __future__ import annotations

from pathlib import Path

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def export_tokenizer(path: str, trust_remote_code: bool, pad_token: str, chat_template=None):
    """A fresh copy of the base's tokenizer with the export's pad token (added if new) and chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if pad_token in tokenizer.get_vocab():
        tokenizer.pad_token = pad_token
    else:
        tokenizer.add_special_tokens({"pad_token": pad_token})
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def save_full_model(model, tokenizer, folder: Path, dtype: str, name: str) -> None:
    """Save `model` (already merged) and `tokenizer` to folder; a pad token new to the vocabulary gets an
    embedding row (existing rows, and so every logit and score of real tokens, are unchanged)."""
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    for config in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.config._name_or_path = name  # not the folder it was loaded from on this machine
    model.to(DTYPES[dtype]).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
