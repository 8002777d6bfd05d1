"""verl/train.parquet and verl/test.parquet: veRL's RL row format, one row per prompt.

Each row is what veRL's data preprocessors write (examples/data_preprocess/full_hh_rlhf.py):
data_source, prompt (chat messages; veRL applies the policy's chat template), ability, reward_model
{style: "model", ground_truth: unused by a model reward}, extra_info {split, index}. Prompts are split as
the reward model's held-out set is (by prompt hash), so test.parquet holds prompts the reward model was
evaluated on, never trained on.
"""
from __future__ import annotations

from pathlib import Path

from ..data.pairs import Group, split_by_prompt
from .conversation import Conversation

MESSAGE = [("role", "string"), ("content", "string")]


def schema():
    import pyarrow as pa

    return pa.schema([
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([(name, getattr(pa, kind)()) for name, kind in MESSAGE]))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        ("extra_info", pa.struct([("split", pa.string()), ("index", pa.int64())])),
    ])


def verl_rows(prompts: list[str], system: str | None, source: str, split: str) -> list[dict]:
    conv = Conversation(system, chat=True)  # veRL always applies a chat template to the message list
    return [{"data_source": source, "prompt": conv.messages(p), "ability": "alignment",
             "reward_model": {"style": "model", "ground_truth": ""},
             "extra_info": {"split": split, "index": i}} for i, p in enumerate(prompts)]


def split_prompts(prompts: list[str], eval_fraction: float) -> tuple[list[str], list[str]]:
    train, held = split_by_prompt([Group(p) for p in prompts], eval_fraction)
    return [g.prompt for g in train], [g.prompt for g in held]


def write_verl(folder: Path, prompts: list[str], system: str | None, source: str,
               eval_fraction: float) -> dict[str, int]:
    """Write train.parquet and test.parquet (test may have no rows: veRL then has nothing to validate on)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, part in zip(("train", "test"), split_prompts(prompts, eval_fraction)):
        table = pa.Table.from_pylist(verl_rows(part, system, source, split), schema=schema())
        pq.write_table(table, folder / f"{split}.parquet")
        counts[split] = len(part)
    return counts
