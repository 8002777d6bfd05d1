"""Save and load one named adapter plus its scalar head: a PEFT adapter folder (safetensors) + head.safetensors."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..data.jsonl import fsync_dir

HEAD_FILE = "head.safetensors"
ADAPTER_FILE = "adapter_model.safetensors"


def save_adapter(models, adapter: str, folder: Path, info: dict | None = None) -> Path:
    """Write the adapter atomically: into a temporary sibling, fsynced, then renamed into place."""
    from peft import get_peft_model_state_dict

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    # Only the LoRA tensors are handed to peft: a full model.state_dict() makes bitsandbytes 0.50 unpack the
    # packed 4-bit layers, and its inverse scrambles their scales (hidden states off by ~40, measured).
    lora = {n: p for n, p in models.model.named_parameters() if "lora_" in n}
    state = {k: v.detach().cpu().contiguous()
             for k, v in get_peft_model_state_dict(models.model, state_dict=lora, adapter_name=adapter).items()}
    save_file(state, tmp / ADAPTER_FILE)
    models.model.peft_config[adapter].save_pretrained(tmp)
    head = models.heads[adapter]
    save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, tmp / HEAD_FILE)
    (tmp / "info.json").write_text(json.dumps(info or {}, indent=2))
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    if old.exists():
        shutil.rmtree(old)
    fsync_dir(folder.parent)
    return folder


def is_complete(folder: Path) -> bool:
    folder = Path(folder)
    return all((folder / f).is_file() for f in (ADAPTER_FILE, HEAD_FILE, "adapter_config.json"))


def adapter_shape(folder: Path, num_layers: int) -> tuple[int, int]:
    """(rank, top layers) of a saved adapter; top layers is 0 when it covers every layer."""
    config = json.loads((Path(folder) / "adapter_config.json").read_text())
    layers = config.get("layers_to_transform")
    return int(config["r"]), (len(layers) if layers and len(layers) < num_layers else 0)


def load_adapter(models, adapter: str, folder: Path) -> dict:
    """Load weights saved by save_adapter into an existing adapter of the same shape.

    The LoRA tensors are copied straight into the adapter's parameters: peft's loader reads the full
    model.state_dict(), which scrambles bitsandbytes' packed 4-bit layers (see save_adapter).
    """
    folder = Path(folder)
    state = load_file(folder / ADAPTER_FILE, device=str(models.device))
    targets = {n.replace(f".{adapter}.", "."): p for n, p in models.model.named_parameters()
               if "lora_" in n and f".{adapter}." in n}
    if set(targets) != set(state) or any(targets[k].shape != state[k].shape for k in state):
        raise ValueError(f"The adapter in {folder} does not fit the loaded model's {adapter!r} adapter.")
    with torch.no_grad():
        for key, param in targets.items():
            param.copy_(state[key])
    models.heads[adapter].load_state_dict(load_file(folder / HEAD_FILE, device=str(models.device)))
    models.use(models.model.active_adapter)
    info = folder / "info.json"
    return json.loads(info.read_text()) if info.is_file() else {}
