"""sft.jsonl: the answers a person wrote (demonstrations.jsonl), as conversational prompt / completion for
TRL's SFTTrainer.

The demonstrations come from data/demonstrations.read (retracted ones removed, bad lines skipped and reported).
"""
from __future__ import annotations

from .conversation import Conversation


def sft_rows(demonstrations: list[dict], conv: Conversation) -> list[dict]:
    return [{"prompt": conv.prompt(d["prompt"]), "completion": conv.answer(d["completion"])} for d in demonstrations]
