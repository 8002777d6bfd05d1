"""The model half of a bundle: policy_adapter/, policy_merged/, reward_adapter/, reward_model/.

Each is built from the session's saved adapter folders on a fresh fp32 copy of the base, loaded unquantized
(never the lab's 4-bit model), one model at a time so memory holds at most one extra copy of the base.
"""
from __future__ import annotations

import gc
import json
import os
from pathlib import Path

from ..data.pairs import Pair
from ..errors import BrokenAdapter
from ..generation.chat import chat_text
from ..modeling import checkpoints
from .adapters import base_model_id, head_bias, load_base, policy_peft, reward_peft
from .conversation import Conversation
from .merged import export_tokenizer, save_full_model
from .preferences import uncut
from .tokenizer import clear_unused_bos, pad_token_for, read_position_mismatches, reward_template

CHECKED_ROWS = 32  # answers whose engine tokenization is compared with the lab's (a check, not a benchmark)


def _generation_eos(path: str):
    try:
        return json.loads((Path(path) / "generation_config.json").read_text()).get("eos_token_id")
    except (OSError, ValueError):
        return None  # a hub id, or no generation config: the tokenizer's EOS is all there is


def max_prompt_tokens(tokenizer, conv: Conversation, prompts: list[str]) -> int:
    """The longest chat-rendered prompt in tokens, rounded up to 64, at least 256 (veRL's max_prompt_length)."""
    tokenizer.lab_system_prompt = conv.system
    longest = max((len(tokenizer(chat_text(tokenizer, p), add_special_tokens=False)["input_ids"])
                   for p in prompts), default=1)
    return max(256, -(-longest // 64) * 64)  # room for longer prompts added to the data later


def write_models(out: Path, model: str, path: str, trust_remote_code: bool, conv: Conversation,
                 policy_folder: Path | None, reward_folder: Path | None, pairs: list[Pair], dtype: str) -> dict:
    """Write the model folders; returns what LAUNCH.md and export.json say about them."""
    from transformers import AutoTokenizer

    base_id = base_model_id(model, path)
    probe = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    pad, added = pad_token_for(probe, conv, _generation_eos(path))
    info = {"base_id": base_id, "pad_token": pad, "pad_added": added, "bias": 0.0, "template_note": "",
            "models": {}, "warnings": [], "reward_model": reward_folder is not None}
    _write_policy(out, path, trust_remote_code, base_id, pad, policy_folder, dtype, info)
    kind, why = _reward_skipped(reward_folder, bool(uncut(pairs)))
    if kind:
        info["reward_model"] = False
        info["reward_skipped"] = kind
        info["warnings"].append(f"the reward model was not exported: {why}")
        reward_folder = None
    if reward_folder is not None:
        _write_reward(out, path, trust_remote_code, base_id, probe, conv, reward_folder, pairs, dtype, info)
    return info


def _reward_skipped(folder: Path | None, has_pairs: bool) -> tuple[str, str]:
    """("readout" or "broken", why) when the session's reward adapter cannot be handed off; ("", "") when it can
    or when there is none."""
    if folder is None:
        return "", ""
    try:
        checkpoints.check_readable(folder)
        readout = checkpoints.readout_of(folder)
    except BrokenAdapter as err:  # named from the session folder: LAUNCH.md travels to other machines
        return "broken", str(err).replace(f"{folder.parent.parent}{os.sep}", "")
    if readout != "last":
        return "readout", (f"it reads the answer's tokens ({readout!r} read-out), and a transformers "
                "*ForSequenceClassification reads one token, so every engine would score differently from the lab. "
                "Train one with `train-rm --readout last` and export again to hand it off" + (
                    ", or train the engine's own from preferences.jsonl (the TRL reward recipe and the OpenRLHF "
                    "train_rm command start from policy_merged)" if has_pairs else ""))
    return "", ""


def _write_policy(out: Path, path: str, trust_remote_code: bool, base_id: str, pad: str,
                  folder: Path | None, dtype: str, info: dict) -> None:
    """policy_adapter/ (when a version was trained) and policy_merged/ (the base itself when none was)."""
    base = load_base(path, "causal", trust_remote_code, base_id)
    merged = base
    if folder is not None:
        peft = policy_peft(base, folder, base_id)
        peft.save_pretrained(out / "policy_adapter", save_embedding_layers=False)  # no hub lookup
        merged = peft.merge_and_unload()
        info["models"]["policy_adapter"] = True
    save_full_model(merged, export_tokenizer(path, trust_remote_code, pad), out / "policy_merged", dtype, base_id)
    info["models"]["policy_merged"] = True
    del base, merged
    gc.collect()  # one extra copy of the base in memory at a time


def _write_reward(out: Path, path: str, trust_remote_code: bool, base_id: str, probe, conv: Conversation,
                  folder: Path, pairs: list[Pair], dtype: str, info: dict) -> None:
    """reward_adapter/ and reward_model/, with a tokenizer that makes engines read the reward at the lab's token."""
    template, warning = reward_template(probe, conv)
    if warning:
        info["warnings"].append(warning)
    elif template != probe.chat_template:
        info["template_note"] = ("`reward_model/`'s chat template ends a conversation at the last answer's "
                                 "end-of-turn token (the model's own template adds text after it).")
    tokenizer = export_tokenizer(path, trust_remote_code, info["pad_token"], template)
    if clear_unused_bos(tokenizer, conv):
        info["template_note"] += (" Its tokenizer has no BOS token (the base's, never added by its tokenizer, opens "
                                  "every conversation: veRL would strip it from the text it scores).")
    base = load_base(path, "reward", trust_remote_code, base_id, None if info["pad_added"] else tokenizer.pad_token_id)
    peft = reward_peft(base, folder, base_id)
    peft.save_pretrained(out / "reward_adapter", save_embedding_layers=False)
    save_full_model(peft.merge_and_unload(), tokenizer, out / "reward_model", dtype, base_id)
    info["models"].update(reward_adapter=True, reward_model=True)
    info["bias"] = head_bias(folder)
    rows = [(p.prompt, text) for p in uncut(pairs)[:CHECKED_ROWS // 2] for text in (p.chosen, p.rejected)]
    info["read_mismatches"] = read_position_mismatches(tokenizer, conv, rows)
    if info["read_mismatches"]:
        info["warnings"].append(f"{info['read_mismatches']} of {len(rows)} checked answers tokenize differently "
                                "through reward_model/'s chat template than in the lab")
