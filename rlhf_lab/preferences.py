"""Ranking events -> (chosen, rejected) pairs, the keyboard ranking syntax, and the TRL export."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path


class RankingInputError(ValueError):
    """A ranking typed or clicked by a person does not parse; the message says how to fix it."""


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    ranking_id: str = ""
    chosen_truncated: bool = False    # cut at max_new_tokens: scored without EOS, as PPO scores it
    rejected_truncated: bool = False


def pairs_from_ranking(record: dict) -> list[Pair]:
    """All cross-group pairs of one ranking (better group first); none within a tie, none unless ranked."""
    if record.get("verdict") != "ranked":
        return []
    completions, groups = record["completions"], record["ranking"]
    cut = record.get("truncated") or [False] * len(completions)
    pairs = []
    for gi, better in enumerate(groups):
        for worse in groups[gi + 1:]:
            for i in better:
                for j in worse:
                    if completions[i] != completions[j]:  # identical texts carry no preference
                        pairs.append(Pair(record["prompt"], completions[i], completions[j], record.get("id", ""),
                                          bool(cut[i]), bool(cut[j])))
    return pairs


def session_pairs(records: list[dict]) -> list[Pair]:
    """Pairs of all active rankings, duplicates (same prompt, chosen, rejected) removed, order kept."""
    seen, out = set(), []
    for rec in records:
        for p in pairs_from_ranking(rec):
            key = (p.prompt, p.chosen, p.rejected)
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


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


def export_trl(pairs: list[Pair], path: Path) -> int:
    """Write pairs as TRL / OpenRLHF preference JSONL (prompt, chosen, rejected); returns the count."""
    path = Path(path)
    if not path.parent.exists():
        raise RankingInputError(f"Folder {path.parent} does not exist.")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected},
                               ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return len(pairs)


def read_trl(path: Path) -> list[Pair]:
    """Read preference JSONL (prompt, chosen, rejected); raises RankingInputError naming the bad line."""
    pairs = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise RankingInputError(f"Cannot read {path}: {err}") from err
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            fields = [row["prompt"], row["chosen"], row["rejected"]]
        except (ValueError, KeyError, TypeError) as err:
            raise RankingInputError(f"{path} line {n} is not a JSON object with prompt, chosen and rejected "
                                    "strings; nothing was imported.") from err
        if not all(isinstance(x, str) for x in fields):
            raise RankingInputError(f"{path} line {n}: prompt, chosen and rejected must be strings; "
                                    "nothing was imported.")
        pairs.append(Pair(*fields))
    if not pairs:
        raise RankingInputError(f"{path} holds no pairs; nothing was imported.")
    return pairs
