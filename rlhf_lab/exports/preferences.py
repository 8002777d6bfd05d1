"""preferences.jsonl: conversational prompt / chosen / rejected with a margin, for TRL reward / DPO and OpenRLHF
train_rm / train_dpo.

Pairs with a cut answer (stopped at max_new_tokens) are dropped: the lab scores such an answer without EOS,
but a conversational row always closes the answer with the template's end-of-turn token, which would teach
an engine that the cut answer was a finished one.
"""
from __future__ import annotations

from ..data.pairs import Pair
from .conversation import Conversation


def rank_margin(pair: Pair) -> float:
    """(rank gap - 1) / (groups - 2): 0 for adjacent ranks, 1 for the best against the worst of a ranking.

    TRL's RewardTrainer and OpenRLHF (--model.margin_loss_enable) train on -log sigmoid(r_c - r_r - margin),
    so answers ranked further apart are pushed further apart; the scale of Llama 2's margins (0 to 1).
    """
    return (pair.rank_gap - 1) / (pair.rank_groups - 2) if pair.rank_groups > 2 else 0.0


def uncut(pairs: list[Pair]) -> list[Pair]:
    return [p for p in pairs if not (p.chosen_truncated or p.rejected_truncated)]


def preference_rows(pairs: list[Pair], conv: Conversation) -> list[dict]:
    return [{"prompt": conv.prompt(p.prompt), "chosen": conv.answer(p.chosen), "rejected": conv.answer(p.rejected),
             "margin": rank_margin(p)} for p in uncut(pairs)]
