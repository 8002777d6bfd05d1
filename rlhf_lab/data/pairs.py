"""Ranking records -> (chosen, rejected) pairs. No torch: the trainers and the exports read these."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    ranking_id: str = ""
    chosen_truncated: bool = False    # cut at max_new_tokens: scored without EOS, as PPO scores it
    rejected_truncated: bool = False
    rank_gap: int = field(default=1, compare=False)     # how many ranks apart (1: adjacent groups)
    rank_groups: int = field(default=2, compare=False)  # groups in its ranking (exports scale margins by it)


def pairs_from_ranking(record: dict) -> list[Pair]:
    """All cross-group pairs of one ranking (better group first); none within a tie, none unless ranked."""
    if record.get("verdict") != "ranked":
        return []
    completions, groups = record["completions"], record["ranking"]
    cut = record.get("truncated") or [False] * len(completions)
    pairs = []
    for gi, better in enumerate(groups):
        for gj, worse in enumerate(groups[gi + 1:], start=gi + 1):
            for i in better:
                for j in worse:
                    if completions[i] != completions[j]:  # identical texts carry no preference
                        pairs.append(Pair(record["prompt"], completions[i], completions[j], record.get("id", ""),
                                          bool(cut[i]), bool(cut[j]), gj - gi, len(groups)))
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


@dataclass
class Group:
    """One prompt's completions and the (better, worse) index pairs among them."""
    prompt: str
    completions: list[str] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)


def groups_from_pairs(pairs: list[Pair]) -> list[Group]:
    """Group pairs by ranking (or by prompt for imported pairs), indexing each distinct completion once."""
    groups: dict[tuple[str, str], Group] = {}
    for p in pairs:
        g = groups.setdefault((p.ranking_id, p.prompt), Group(p.prompt))
        idx = []
        for text, cut in ((p.chosen, p.chosen_truncated), (p.rejected, p.rejected_truncated)):
            if text not in g.completions:
                g.completions.append(text)
                g.truncated.append(cut)
            idx.append(g.completions.index(text))
        g.pairs.append((idx[0], idx[1]))
    return list(groups.values())


def prompt_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def split_by_prompt(groups: list[Group], eval_fraction: float) -> tuple[list[Group], list[Group]]:
    """Deterministic split: prompts ordered by hash, the first ceil(fraction * n) held out (at least one when
    there are two or more prompts). A prompt's groups always land on one side."""
    prompts = sorted({g.prompt for g in groups}, key=prompt_key)
    n_eval = min(len(prompts) - 1, max(1, math.ceil(eval_fraction * len(prompts)))) if len(prompts) > 1 else 0
    held = set(prompts[:n_eval])
    return [g for g in groups if g.prompt not in held], [g for g in groups if g.prompt in held]


def count_pairs(groups: list[Group]) -> int:
    return sum(len(g.pairs) for g in groups)
