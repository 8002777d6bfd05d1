"""Prompt sets: the built-in one (rlhf_lab/data/prompts.txt) and one per scenario (data/scenario_prompts/)."""
from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError

PROMPTS_FILE = Path(__file__).parent / "prompts.txt"
SETS_DIR = Path(__file__).parent / "scenario_prompts"
GENERAL = "general"


def read_prompt_file(path: Path) -> tuple[str, ...]:
    """One prompt per line; blank lines and lines starting with '#' are skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


@lru_cache(maxsize=1)
def builtin_prompts() -> tuple[str, ...]:
    return read_prompt_file(PROMPTS_FILE)


def set_names() -> list[str]:
    return [GENERAL] + sorted(p.stem for p in SETS_DIR.glob("*.txt"))


@lru_cache(maxsize=16)
def prompt_set(name: str) -> tuple[str, ...]:
    """The prompts of a named set: 'general' (the built-in set) or a scenario's (cheerful, no_lists, ...)."""
    if name == GENERAL:
        return builtin_prompts()
    path = SETS_DIR / f"{name}.txt"
    if name not in set_names():
        raise ConfigError(f"Unknown prompt set {name!r}; the lab has {', '.join(set_names())}.")
    return read_prompt_file(path)


def random_prompt(rng: random.Random | None = None) -> str:
    return (rng or random).choice(builtin_prompts())


def sample_prompts(n: int, seed: int = 0, pool: Sequence[str] | None = None) -> list[str]:
    """n prompts from `pool` (default: the built-in set): distinct while it lasts, deterministic for a seed."""
    rng = random.Random(seed)
    pool = list(pool or builtin_prompts())
    out = []
    while len(out) < n:
        rng.shuffle(pool)
        out.extend(pool[: n - len(out)])
    return out
