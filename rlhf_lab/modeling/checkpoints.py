"""Save and load one named adapter plus its scalar head: a PEFT adapter folder (safetensors) + head.safetensors."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import time

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..data.files import share
from ..data.jsonl import fsync_dir
from ..config.reward import READOUTS
from ..errors import BrokenAdapter

HEAD_FILE = "head.safetensors"
ADAPTER_FILE = "adapter_model.safetensors"


def save_adapter(models, adapter: str, folder: Path, info: dict | None = None) -> Path:
    """Write the adapter atomically: into a temporary sibling, fsynced, then renamed into place."""
    from peft import get_peft_model_state_dict

    folder = recover(folder)  # an earlier save cut between its renames: put its model back before replacing it
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
    if adapter in models.readouts:  # how its head is read: a load must read it the same way
        info = {**(info or {}), "readout": models.readouts[adapter]}
    (tmp / "info.json").write_text(json.dumps(info or {}, indent=2))
    share(tmp)  # safetensors writes 0600: other users and training jobs must be able to read the adapter
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


def _whole(folder: Path) -> bool:
    """Every file a save writes is there and not empty (save_adapter fsyncs them all before any rename)."""
    return is_complete(folder) and all((folder / f).stat().st_size > 0
                                       for f in (ADAPTER_FILE, HEAD_FILE, "adapter_config.json"))


def recover(folder: Path) -> Path:
    """Finish or undo a save that stopped between `folder -> folder.old` and `folder.tmp -> folder`.

    A whole .tmp wins (it was fsynced before the renames began), else .old comes back; leftovers of a save
    that never reached its renames are removed. Call it where nothing is saving (opening a session, the
    start of a save): it renames folders. Returns `folder`.
    """
    folder = Path(folder)
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    if not folder.exists():
        for candidate in (tmp, old):
            if candidate.is_dir() and _whole(candidate):
                os.replace(candidate, folder)
                fsync_dir(folder.parent)
                break
    for leftover in (tmp, old):
        if leftover.exists() and folder.exists():
            shutil.rmtree(leftover)
    return folder


def recover_all(adapters: Path) -> None:
    """recover() every adapter folder under a session's adapters/ whose save was cut short."""
    adapters = Path(adapters)
    for leftover in [*adapters.glob("*.tmp"), *adapters.glob("*.old"), *adapters.glob("*/*.tmp"),
                     *adapters.glob("*/*.old")]:
        if leftover.is_dir():
            recover(leftover.with_suffix(""))


def set_aside(folder: Path) -> Path:
    """Move a broken adapter folder out of the way, kept for inspection, so the session works without it."""
    folder = Path(folder)
    aside = folder.with_name(f"{folder.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(folder, aside)
    fsync_dir(folder.parent)
    return aside


def check_readable(folder: Path) -> None:
    """BrokenAdapter naming the first missing, empty or unreadable file of a saved adapter folder."""
    folder = Path(folder)
    for name in ("adapter_config.json", ADAPTER_FILE, HEAD_FILE):
        path = folder / name
        if not path.is_file() or path.stat().st_size == 0:
            raise BrokenAdapter(f"{path} is {'empty' if path.is_file() else 'missing'}")
    try:
        config = json.loads((folder / "adapter_config.json").read_text())
        int(config["r"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BrokenAdapter(f"{folder / 'adapter_config.json'} cannot be read ({err})") from err
    for name in (ADAPTER_FILE, HEAD_FILE):  # the header only: garbage bytes fail here, not mid-load
        try:
            with safe_open(str(folder / name), framework="pt"):
                pass
        except (OSError, SafetensorError) as err:
            raise BrokenAdapter(f"{folder / name} cannot be read ({err})") from err


def adapter_shape(folder: Path, num_layers: int) -> tuple[int, int]:
    """(rank, top layers) of a saved adapter; top layers is 0 when it covers every layer."""
    config = json.loads((Path(folder) / "adapter_config.json").read_text())
    layers = config.get("layers_to_transform")
    return int(config["r"]), (len(layers) if layers and len(layers) < num_layers else 0)


def readout_of(folder: Path) -> str:
    """Where a saved head is read (readout.py); adapters saved before read-outs were recorded read "last"."""
    info = Path(folder) / "info.json"
    try:
        value = json.loads(info.read_text()).get("readout", "last") if info.is_file() else "last"
    except (OSError, ValueError, AttributeError) as err:
        raise BrokenAdapter(f"{info} cannot be read ({err})") from err
    if value not in READOUTS:
        raise BrokenAdapter(f"{info} names an unknown read-out {value!r}")
    return value


def load_adapter(models, adapter: str, folder: Path) -> dict:
    """Load weights saved by save_adapter into an existing adapter of the same shape.

    The LoRA tensors are copied straight into the adapter's parameters: peft's loader reads the full
    model.state_dict(), which scrambles bitsandbytes' packed 4-bit layers (see save_adapter).
    """
    folder = Path(folder)
    state = _read_tensors(folder / ADAPTER_FILE, models.device)
    targets = {n.replace(f".{adapter}.", "."): p for n, p in models.model.named_parameters()
               if "lora_" in n and f".{adapter}." in n}
    if set(targets) != set(state) or any(targets[k].shape != state[k].shape for k in state):
        raise BrokenAdapter(f"{folder / ADAPTER_FILE} does not fit the loaded model's {adapter!r} adapter")
    with torch.no_grad():
        for key, param in targets.items():
            param.copy_(state[key])
    try:
        models.heads[adapter].load_state_dict(_read_tensors(folder / HEAD_FILE, models.device))
    except RuntimeError as err:  # the head's shapes do not fit: a file from another model
        raise BrokenAdapter(f"{folder / HEAD_FILE} does not fit the loaded model ({err})") from err
    if adapter in models.readouts:
        models.readouts[adapter] = readout_of(folder)
    models.use(models.model.active_adapter)
    info = folder / "info.json"
    return json.loads(info.read_text()) if info.is_file() else {}


def _read_tensors(path: Path, device) -> dict:
    try:
        return load_file(path, device=str(device))
    except (SafetensorError, OSError) as err:
        raise BrokenAdapter(f"{path} cannot be read ({err})") from err
