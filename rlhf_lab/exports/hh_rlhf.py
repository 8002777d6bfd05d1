"""hh-rlhf.jsonl: Anthropic's HH-RLHF text format ("\n\nHuman: ...\n\nAssistant: ..." chosen / rejected).

It has no system message and no margin. Pairs whose texts hold a turn marker themselves are left out (they
would read back as other turns); so are pairs with a cut answer, as in preferences.jsonl.
"""
from __future__ import annotations

from ..data.pairs import Pair
from ..data.preference_formats import hh_representable, hh_text
from .preferences import uncut


def hh_rows(pairs: list[Pair]) -> list[dict]:
    return [{"chosen": hh_text(p.prompt, p.chosen), "rejected": hh_text(p.prompt, p.rejected)}
            for p in uncut(pairs) if hh_representable(p.prompt, p.chosen, p.rejected)]
