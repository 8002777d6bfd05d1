"""The built-in prompt set (rlhf_lab/data/prompts.txt, one per line)."""
from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

PROMPTS_FILE = Path(__file__).parent / "prompts.txt"


@lru_cache(maxsize=1)
def builtin_prompts() -> tuple[str, ...]:
    lines = PROMPTS_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def random_prompt(rng: random.Random | None = None) -> str:
    return (rng or random).choice(builtin_prompts())


def sample_prompts(n: int, seed: int = 0) -> list[str]:
    """n prompts from the built-in set: distinct while the set lasts, deterministic for a seed."""
    rng = random.Random(seed)
    pool = list(builtin_prompts())
    out = []
    while len(out) < n:
        rng.shuffle(pool)
        out.extend(pool[: n - len(out)])
    return out
