"""The ranking syntax people type (2>1=3>4) or click (a rank per card), and the check every stored ranking passes."""
from __future__ import annotations

import re

from ..errors import RankingInputError, SessionError


def validate_ranking(ranking, k: int) -> list[list[int]]:
    """A ranking is a list of groups (best first) that partitions range(k); a group of several is a tie."""
    try:
        groups = [[int(i) for i in group] for group in ranking]
    except (TypeError, ValueError) as err:
        raise SessionError(f"A ranking is a list of groups of card indices, got {ranking!r}.") from err
    flat = [i for g in groups for i in g]
    if any(not g for g in groups):
        raise SessionError("A ranking has an empty group.")
    if sorted(flat) != list(range(k)):
        raise SessionError(f"A ranking must place each of the {k} cards exactly once, got {groups!r}.")
    return groups


def parse_order(text: str, k: int) -> list[list[int]]:
    """Parse the keyboard syntax: card numbers best first, '>' (or space/comma) between ranks, '=' for ties.

    "2>1=3>4" -> [[1], [0, 2], [3]]. Cards left out share the last place: "3" means card 3 beats the rest.
    """
    text = (text or "").strip()
    if not text:
        raise RankingInputError("Type an order such as 2>1=3>4 (best first, = for a tie).")
    if not re.fullmatch(r"[0-9=>,\s]+", text):
        raise RankingInputError(f"{text!r}: use card numbers, '>' between ranks and '=' for ties, e.g. 2>1=3>4.")
    groups, seen = [], set()
    for chunk in re.split(r"[>,\s]+", text):
        if not chunk:
            continue
        group = []
        for part in chunk.split("="):
            if not part:
                raise RankingInputError(f"{text!r}: '=' needs a card number on each side.")
            card = int(part)
            if not 1 <= card <= k:
                raise RankingInputError(f"There is no card {card}; cards are numbered 1 to {k}.")
            if card in seen:
                raise RankingInputError(f"Card {card} appears twice in {text!r}.")
            seen.add(card)
            group.append(card - 1)
        groups.append(group)
    rest = [i for i in range(k) if i + 1 not in seen]
    if rest:
        groups.append(rest)
    return groups


def groups_from_ranks(ranks: list) -> list[list[int]]:
    """Per-card ranks (1 = best; equal numbers tie) -> groups best first."""
    if any(r in (None, "") for r in ranks):
        missing = [str(i + 1) for i, r in enumerate(ranks) if r in (None, "")]
        raise RankingInputError(f"Give every card a rank (missing: card {', '.join(missing)}), "
                                "or type an order like 2>1=3>4.")
    values = [int(r) for r in ranks]
    return [[i for i, v in enumerate(values) if v == level] for level in sorted(set(values))]


def format_order(groups: list[list[int]]) -> str:
    return ">".join("=".join(str(i + 1) for i in g) for g in groups)
