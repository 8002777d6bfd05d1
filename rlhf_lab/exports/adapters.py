"""Standard PEFT folders from the session's adapters, built on an unquantized fp32 copy of the base.

The session stores each adapter as LoRA tensors plus its own scalar head (head.safetensors, with a bias).
Loaded by peft as they are, the reward adapter would come up on a randomly initialised `score` without an
error (the pitfall OpenRLHF PR #1342 fixed). Here:
- policy: the LoRA on `*ForCausalLM`, task CAUSAL_LM (the value head is the lab's PPO critic and stays behind);
- reward: the LoRA on `*ForSequenceClassification` (num_labels=1), task SEQ_CLS, with the head's weight as
  `score` in modules_to_save, so it is inside adapter_model.safetensors. `score` has no bias in transformers:
  the bias is dropped, which shifts every reward by the same constant and changes no comparison.
Both name as their base the model id the session records (never a path on this machine).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..errors import ExportError
from ..modeling import default_model
from ..modeling.adapters import wrap_peft
from ..modeling.checkpoints import ADAPTER_FILE, HEAD_FILE

SCORE = "score"


def base_model_id(model: str, resolved_path: str) -> str:
    """A name for the base that means something on another machine: the hub id for the embedded default and
    for hub models; for a local folder, the hub id its config recorded, else the folder's name."""
    if model in ("", "default", None):
        return default_model.HUB_ID
    path = Path(resolved_path)
    if not path.is_dir():
        return model
    try:
        recorded = json.loads((path / "config.json").read_text()).get("_name_or_path") or ""
    except (OSError, ValueError):
        recorded = ""
    looks_like_hub_id = recorded.count("/") == 1 and not recorded.startswith((".", "/", "~"))
    return recorded if looks_like_hub_id and not Path(recorded).exists() else path.name


def load_base(path: str, kind: str, trust_remote_code: bool, name: str, pad_token_id: int | None = None):
    """The base in fp32, never quantized: `*ForCausalLM` (kind "causal") or `*ForSequenceClassification` with
    one label (kind "reward", its `score` still random until the reward head is copied in). It is named
    `name`, not the folder it loads from: peft writes that name into adapter configs and model cards."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs = dict(dtype=torch.float32, use_safetensors=True, trust_remote_code=trust_remote_code)
    if kind == "causal":
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, pad_token_id=pad_token_id,
                                                                   **kwargs)
        if not isinstance(getattr(model, SCORE, None), torch.nn.Linear):
            raise ExportError(f"{type(model).__name__} has no linear `score` head; the reward model of this "
                              "architecture cannot be exported as *ForSequenceClassification. Nothing was written.")
    model.name_or_path = model.config._name_or_path = name
    return model


def _lora_config(folder: Path, base_id: str, task_type: str):
    from peft import LoraConfig

    config = LoraConfig.from_pretrained(str(folder))
    config.base_model_name_or_path = base_id
    config.task_type = task_type
    config.inference_mode = True
    if task_type == "SEQ_CLS":
        config.modules_to_save = [SCORE]
    return config


def _clean(peft_model):
    """peft adds its own classifier names to modules_to_save ("classifier", "score" again): keep ours alone."""
    for config in peft_model.peft_config.values():
        if config.modules_to_save:
            config.modules_to_save = list(dict.fromkeys(m for m in config.modules_to_save if m == SCORE))
    return peft_model


def _load_lora(peft_model, folder: Path) -> None:
    """Copy the saved LoRA tensors in; ExportError unless they are exactly the adapter's LoRA weights."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    state = load_file(str(folder / ADAPTER_FILE))
    current = get_peft_model_state_dict(peft_model, save_embedding_layers=False)
    wrong = sorted(set(state) ^ {k for k in current if "lora_" in k})
    problem = f"{len(wrong)} tensor names differ, e.g. {', '.join(wrong[:2])}" if wrong else None
    if not problem:
        try:  # modules_to_save (the score) keep the weights they hold now
            set_peft_model_state_dict(peft_model, {**{k: v for k, v in current.items() if "lora_" not in k}, **state})
        except RuntimeError as err:  # a shape that does not fit
            problem = str(err).splitlines()[-1].strip()
    if problem:
        raise ExportError(f"{folder / ADAPTER_FILE} does not fit the unquantized base ({problem}). "
                          "Nothing was written.")


def policy_peft(base, folder: Path, base_id: str):
    """The session's policy adapter on a fp32 `*ForCausalLM`, as a PeftModel (task CAUSAL_LM)."""
    model = wrap_peft(base, _lora_config(folder, base_id, "CAUSAL_LM"))
    _load_lora(model, folder)
    return model.eval()


def reward_peft(base, folder: Path, base_id: str):
    """The session's reward adapter and head on a fp32 `*ForSequenceClassification` (task SEQ_CLS, `score` in
    modules_to_save holding the head's weight; the head's bias is dropped)."""
    head = load_file(str(folder / HEAD_FILE))
    score = getattr(base, SCORE)
    if tuple(head["weight"].shape) != tuple(score.weight.shape):
        raise ExportError(f"{folder / HEAD_FILE} holds a head of shape {tuple(head['weight'].shape)}, the base's "
                          f"score is {tuple(score.weight.shape)}. Nothing was written.")
    with torch.no_grad():
        score.weight.copy_(head["weight"])  # before wrapping: modules_to_save copies the module as it is now
    model = _clean(wrap_peft(base, _lora_config(folder, base_id, "SEQ_CLS")))
    _load_lora(model, folder)
    return model.eval()


def head_bias(folder: Path) -> float:
    """The reward head's bias, dropped by the export: lab reward = exported reward + this constant."""
    bias = load_file(str(Path(folder) / HEAD_FILE)).get("bias")
    return float(bias.reshape(-1)[0]) if bias is not None else 0.0
