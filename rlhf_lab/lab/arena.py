"""The arena workflow: blind A/B matches between policy versions, votes (and undo), the leaderboard, and an
autopilot that lets a judge vote.

A match samples one answer from each of two versions for the same prompt with the same seed, and shows them as
A and B in random order; which version is which stays on the Lab (lab.arena_matches) until the vote, which
stores the hidden assignment with the verdict and reveals it.
"""
from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from typing import Iterator

from .. import judges, scenarios
from ..arena.answer_scores import answer_scores
from ..arena.leaderboard import leaderboard as board
from ..arena.matches import BASE, judge_verdict, sample_version
from ..arena.ratings import BOOTSTRAP_ROUNDS
from ..config import GenerationConfig
from ..data import prompts as builtin
from ..data import votes as store
from ..errors import LabError, SessionError, Stopped
from ..runtime import model_thread
from .annotate import validated_prompt
from .ppo import policy_versions

JOB = "arena"
MATCH_JOB = "arena match"
OPEN_MATCHES = 32  # matches drawn but not voted on, kept per Lab (a few browser tabs); the oldest go first
AUTOPILOT_ROWS = 16  # prompts per sampling call in the autopilot: one batched call per version and chunk


def check_versions(lab, chosen: list[str] | None) -> list[str]:
    """The versions to compare (default: all): each must exist in the session, and at least two."""
    known = policy_versions(lab)
    picked = list(dict.fromkeys(v.strip() for v in (chosen or known) if v and v.strip()))
    unknown = [v for v in picked if v not in known]
    if unknown:
        raise LabError(f"This session has no policy version {', '.join(unknown)}; it has {', '.join(known)}.")
    if len(picked) < 2:
        raise LabError(f"Pick at least two versions to compare (this session has {', '.join(known)}); "
                       "run PPO to make a new version.")
    return picked


def _folder(lab, version: str):
    return None if version == BASE else lab.session.adapter_dir("policy") / version


def _least_voted_pair(lab, chosen: list[str], rng: random.Random) -> tuple[str, str]:
    """A pair of versions among those with the fewest votes so far: intervals narrow where votes are few."""
    active, _ = store.read_votes(lab.session.root)
    seen = Counter(frozenset((v["a"]["version"], v["b"]["version"])) for v in active)
    pairs = list(itertools.combinations(chosen, 2))
    fewest = min(seen[frozenset(p)] for p in pairs)
    return rng.choice([p for p in pairs if seen[frozenset(p)] == fewest])


def draw(lab, versions: list[str] | None = None, prompt: str | None = None, cfg: GenerationConfig | None = None,
         seed: int | None = None) -> dict:
    """Sample a blind match: {"match", "prompt", "a", "b", "a_truncated", "b_truncated"} with the versions hidden.
    No prompt: a random built-in one."""
    cfg = cfg or GenerationConfig()
    session = lab.require_session()
    chosen = check_versions(lab, versions)
    rng = random.Random(seed)
    prompt = validated_prompt(lab, prompt, cfg) if prompt and prompt.strip() else builtin.random_prompt(rng)
    u, v = _least_voted_pair(lab, chosen, rng)
    first, second = (u, v) if rng.random() < 0.5 else (v, u)
    sample_seed = rng.randrange(2**31)  # the same seed for both sides: equal versions give equal answers
    models = lab.models or lab.load_model()
    with lab.jobs.inline(MATCH_JOB):
        answers = [model_thread.call(sample_version, models, _folder(lab, ver), [prompt], cfg, sample_seed,
                                     lab.jobs.stop_event)[0] for ver in (first, second)]
    match = {"id": store.new_id(), "session": session.name, "prompt": prompt, "seed": sample_seed,
             "a": store.side(first, answers[0]["text"], answers[0]["tokens"], answers[0]["truncated"]),
             "b": store.side(second, answers[1]["text"], answers[1]["tokens"], answers[1]["truncated"])}
    lab.arena_matches[match["id"]] = match
    while len(lab.arena_matches) > OPEN_MATCHES:
        lab.arena_matches.pop(next(iter(lab.arena_matches)))
    return public(match)


def public(match: dict) -> dict:
    """What a voter may see of a match: the prompt and the two answers, not the versions."""
    return {"match": match["id"], "prompt": match["prompt"], "a": match["a"]["text"], "b": match["b"]["text"],
            "a_truncated": match["a"]["truncated"], "b_truncated": match["b"]["truncated"]}


def open_match(lab) -> dict | None:
    """The newest match of the open session not voted on yet (a reloaded page shows it again), or None."""
    for match in reversed(list(lab.arena_matches.values())):
        if lab.session is not None and match["session"] == lab.session.name:
            return public(match)
    return None


def vote(lab, match_id: str, verdict: str, annotator: str = "human") -> dict:
    """Durably record a vote on an open match (on disk and fsynced when this returns) and reveal the versions:
    {"vote", "verdict", "a", "b", "prompt"}."""
    session = lab.require_session()
    if verdict not in store.VERDICTS:
        raise SessionError(f"A vote is one of {', '.join(store.VERDICTS)}, not {verdict!r}.")
    match = lab.arena_matches.pop(match_id, None)  # taken at once: two quick clicks store one vote, not two
    if match is None or match["session"] != session.name:
        if match is not None:
            lab.arena_matches[match_id] = match
        raise LabError("That match is no longer open (already voted on, or the app restarted): draw a new one.")
    try:
        rec = store.make_vote(match["prompt"], match["a"], match["b"], verdict, annotator,
                              session.read_meta().round, {"seed": match["seed"]}, id_=match["id"])
        store.append_votes(session.root, [rec])
    except BaseException:
        lab.arena_matches[match_id] = match  # nothing was saved: the match stays open for another try
        raise
    return {"vote": rec["id"], "verdict": verdict, "a": match["a"]["version"], "b": match["b"]["version"],
            "prompt": match["prompt"]}


def undo(lab, annotator: str | None = None) -> dict:
    """Retract the newest active vote (of `annotator`, if given)."""
    return store.retract_last(lab.require_session().root, annotator)


def votes(lab, annotator: str | None = None) -> tuple[list[dict], list[str]]:
    """Active votes, oldest first (only those of `annotator`, e.g. "human" or "judge:concise", if given; "all"
    is everyone), and warnings about lines of votes.jsonl that were skipped."""
    active, warnings = store.read_votes(lab.require_session().root)
    return [v for v in active if annotator in (None, "all") or v.get("annotator") == annotator], warnings


def annotators(lab) -> list[str]:
    """Who voted in this session, most votes first."""
    return [a for a, _ in Counter(v.get("annotator", "") for v in votes(lab)[0]).most_common()]


def leaderboard(lab, annotator: str | None = None, rounds: int | None = None, seed: int = 0) -> dict:
    """The BT leaderboard over the session's votes (of `annotator` if given; `rounds` bootstrap resamples,
    default BOOTSTRAP_ROUNDS): see arena.leaderboard."""
    if rounds is not None and not 100 <= int(rounds) <= 10000:
        raise LabError(f"The bootstrap needs between 100 and 10000 rounds, not {rounds}.")
    chosen, warnings = votes(lab, annotator)
    result = board(chosen, rounds=int(rounds or BOOTSTRAP_ROUNDS), seed=seed)
    return {**result, "annotator": annotator or "all", "warnings": warnings}


def scores_of_answers(lab, ids: set[str] | None = None) -> dict[str, list[float]]:
    """{ranking id: a BT score per answer} within each prompt of the session's rankings (only the prompts of
    the rankings in `ids`, if given)."""
    return answer_scores(lab.rankings(), ids)


def autopilot(lab, judge: str, versions: list[str] | None = None, n_prompts: int = 16,
              cfg: GenerationConfig | None = None, seed: int = 0, inline: bool = True):
    """A judge votes on n prompts of its prompt set: each prompt is a match between a pair of the versions (the pairs
    take turns), with A and B in random order. Yields progress rows, then a summary."""
    if not 1 <= int(n_prompts) <= 10000:
        raise LabError(f"--prompts must be between 1 and 10000, not {n_prompts}")
    fn = judges.get_judge(judge)
    cfg = cfg or GenerationConfig()
    session = lab.require_session()
    chosen = check_versions(lab, versions)
    lab.models or lab.load_model()
    make = lambda: model_thread.iterate(lambda: _autopilot_rows(lab, session, fn, judge, chosen, int(n_prompts),
                                                                 cfg, seed))
    return lab.jobs.run(JOB, make, inline)


def _autopilot_rows(lab, session, fn, judge: str, chosen: list[str], n: int, cfg: GenerationConfig,
                    seed: int) -> Iterator[dict]:
    rng = random.Random(seed)
    pairs = list(itertools.combinations(chosen, 2))
    rng.shuffle(pairs)
    prompts = builtin.sample_prompts(n, seed, scenarios.prompts_for_judge(judge))  # where the judge's taste shows
    by_pair: dict[tuple, list[str]] = {}
    for i, prompt in enumerate(prompts):
        by_pair.setdefault(pairs[i % len(pairs)], []).append(prompt)
    chunks = [(pair, ps[i:i + AUTOPILOT_ROWS]) for pair, ps in by_pair.items()
              for i in range(0, len(ps), AUTOPILOT_ROWS)]
    job, done, stopped, started = lab.jobs.current, 0, False, time.time()
    round_ = session.read_meta().round
    for (u, v), chunk in chunks:
        chunk_seed = rng.randrange(2**31)
        try:
            answers = {}
            for ver in (u, v):
                if job is not None:
                    job.phase = {"text": f"votes {done + 1}-{done + len(chunk)} of {n}: sampling {ver}",
                                 "progress": done / n}
                answers[ver] = sample_version(lab.models, _folder(lab, ver), chunk, cfg, chunk_seed,
                                              lab.jobs.stop_event)
        except Stopped:
            stopped = True  # the chunk's samples are dropped: only whole, judged matches become votes
            break
        records = []
        for i, prompt in enumerate(chunk):
            first, second = (u, v) if rng.random() < 0.5 else (v, u)
            a, b = answers[first][i], answers[second][i]
            verdict, scores = judge_verdict(fn, prompt, a["text"], b["text"])
            records.append(store.make_vote(prompt, store.side(first, **a), store.side(second, **b), verdict,
                                           f"judge:{judge}", round_, {"seed": chunk_seed, "judge_scores": scores}))
        store.append_votes(session.root, records)
        done += len(chunk)
        elapsed = time.time() - started
        yield {"step": done, "votes": done, "progress": done / n, "pair": [u, v],
               "eta_s": elapsed / done * (n - done)}
        if lab.jobs.stop_event.is_set():
            stopped = done < n
            break
    yield {"phase": "arena", "summary": True, "votes": done, "stopped": stopped,
           "seconds": round(time.time() - started, 2)}
