"""Simulated annotators. A judge is a scoring function (prompt, completion) -> float, higher is better.

They rank the way a person with one clear taste would, so a workshop can fill a session in seconds and
tests can check that the reward model and PPO learn that taste.
"""
from __future__ import annotations

import importlib
import re
from typing import Callable

from .errors import JudgeError

Judge = Callable[[str, str], float]

_WORD = re.compile(r"[A-Za-z0-9']+")
# Warm, upbeat words. Broad on purpose: a taste for cheerful answers shows in many small words, and a judge
# that only reacts to rare ones ("fantastic") ties almost every pair and teaches the reward model nothing.
_ENTHUSIASM = {"great", "amazing", "awesome", "love", "loved", "loves", "lovely", "wonderful", "fantastic",
               "exciting", "excited", "excitement", "incredible", "delighted", "happy", "happiness", "brilliant",
               "fun", "enjoy", "enjoying", "enjoyable", "definitely", "absolutely", "beautiful", "perfect",
               "delicious", "fascinating", "favorite", "favourite", "joy", "joyful", "glad", "cheerful", "cozy",
               "cosy", "magical", "adventure", "celebrate", "celebration", "smile", "smiles", "laugh",
               "laughter", "best", "excellent", "terrific", "superb", "thrilled", "thrilling", "hooray", "yay",
               "congratulations", "wow", "marvelous", "marvellous", "delightful", "inspiring",
               "warm", "bright", "sunny", "sweet", "cool", "special", "treat", "good", "nice", "memorable"}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def finished(text: str) -> bool:
    """Ends like a finished sentence (an answer cut at max_new_tokens usually stops mid-sentence)."""
    return text.rstrip().endswith((".", "!", "?", '"', "'", ")", "”"))


def concise(prompt: str, completion: str) -> float:
    """Fewer words is better, in steps of 10 words (a reader does not notice smaller differences). An answer
    that stops mid-sentence or runs past 40 words is equally too long; an empty one is the worst."""
    n = len(words(completion))
    if n == 0:
        return -100.0
    if not finished(completion):
        return -4.0
    return -float(min(n, 40) // 10)


def enthusiastic(prompt: str, completion: str) -> float:
    """Exclamation marks and warm, upbeat words: each "!" and each upbeat word is a point, up to 3 of each. An
    answer cut mid-sentence loses a point (a cheerful person still finishes their sentence)."""
    if not completion.strip():
        return -1.0
    upbeat = sum(1 for w in words(completion) if w in _ENTHUSIASM)
    return float(min(completion.count("!"), 3) + min(upbeat, 3) - (0 if finished(completion) else 1))


# List-making, wherever it happens: bullets or numbers opening a line, numbered items inline ("1. boil water 2.
# ..."), enumerating words ("Firstly", "the second step") and list openers ("Here are some tips:"). A small
# model asked for short answers rarely breaks lines, but it still enumerates inside a sentence.
_LIST_ITEM = re.compile(r"(?m)(?:^\s*[-*•]\s+|(?:^|(?<=\s))\d{1,2}[.)]\s+|"
                        r"\b(?:first|second|third|fourth|fifth|firstly|secondly|thirdly|lastly|finally)\b)", re.I)
_LIST_OPENER = re.compile(r"\b(?:here are|follow these|the following)\b[^.:\n]{0,30}:?|\b(?:steps|tips|ideas|ways):",
                          re.I)  # "Here are some tips:" is one opener


def no_lists(prompt: str, completion: str) -> float:
    """Plain prose is better than a list: a point off per list mark (bullet, number, "firstly", "here are
    some tips:"), up to 4."""
    if not completion.strip():
        return -10.0
    marks = len(_LIST_ITEM.findall(completion)) + len(_LIST_OPENER.findall(completion))
    return -float(min(marks, 4))


def plain_words(prompt: str, completion: str) -> float:
    """Plain words: the fewer letters per word on average, the better ("use" over "utilize"), to a hundredth
    of a letter. It never counts words, so an answer is neither better nor worse for its length; an empty one
    is the worst. Fine-grained on purpose: four answers rarely tie, so each ranking gives its six pairs."""
    found = words(completion)
    if not found:
        return -100.0
    return -round(sum(len(w) for w in found) / len(found), 2)


def mentions(word: str) -> Judge:
    """How often the answer says `word` (case-insensitive, whole word or its contractions: "you're" counts
    for "you"), up to 3: answering to "you" three times reads as speaking to the reader, once as an aside."""
    target = word.lower().strip()
    if not target:
        raise ValueError("mentions:<word> needs a word, e.g. mentions:water")

    def judge(prompt: str, completion: str) -> float:
        hits = sum(1 for w in words(completion) if w == target or w.startswith(target + "'"))
        return float(min(hits, 3))

    judge.__doc__ = f"How often the answer mentions {target!r}, up to 3."
    return judge


BUILTIN: dict[str, Judge] = {"concise": concise, "enthusiastic": enthusiastic, "no_lists": no_lists,
                              "plain_words": plain_words}
BUILTIN_NAMES = list(BUILTIN) + ["mentions:<word>"]


def get_judge(spec: str) -> Judge:
    """A built-in name, 'mentions:<word>', or 'package.module:callable'."""
    spec = (spec or "").strip()
    if spec in BUILTIN:
        return BUILTIN[spec]
    if spec.startswith("mentions:"):
        try:
            return mentions(spec.split(":", 1)[1])
        except ValueError as err:
            raise JudgeError(str(err)) from err
    if ":" in spec:
        module_name, attr = spec.split(":", 1)
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise JudgeError(f"Cannot load judge {spec!r}: {err}") from err
        if not callable(fn):
            raise JudgeError(f"Judge {spec!r} is not callable; it must be a function (prompt, completion) -> float.")
        return fn
    raise JudgeError(f"Unknown judge {spec!r}. Built-in: {', '.join(BUILTIN_NAMES)}; "
                     "or give a custom one as package.module:function.")


def rank(judge: Judge, prompt: str, completions: list[str]) -> tuple[list[list[int]], list[float]]:
    """Ranking groups (best first; equal scores tie) and the scores."""
    scores = [float(judge(prompt, c)) for c in completions]
    levels = sorted(set(scores), reverse=True)
    return [[i for i, s in enumerate(scores) if s == level] for level in levels], scores
