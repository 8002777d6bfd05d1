"""prompts.jsonl: the session's distinct prompts as {"prompt": messages}, for TRL GRPO / RLOO and OpenRLHF PPO."""
from __future__ import annotations

from .conversation import Conversation


def distinct_prompts(records: list[dict]) -> list[str]:
    """Every prompt of the active records (any verdict: a skipped prompt is still a prompt), first seen first."""
    return list(dict.fromkeys(r["prompt"] for r in records))


def prompt_rows(prompts: list[str], conv: Conversation) -> list[dict]:
    return [{"prompt": conv.prompt(p)} for p in prompts]
