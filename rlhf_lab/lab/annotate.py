"""Annotation: sample K answers, record rankings (and undo), import/export pairs, let a judge rank (simulate)."""
from __future__ import annotations

import contextlib
import queue
import random
import time
from pathlib import Path
from typing import Iterator

from .. import judges, scenarios
from ..config import GenerationConfig
from ..data import prompts as builtin
from ..data.demonstrations import all_pairs
from ..data.pairs import session_pairs
from ..data.preference_files import read_trl
from ..errors import LabBusy, LabError, SessionError, Stopped
from ..generation.chat import check_prompt, require_prompt
from ..generation.decode import decode_partial, eos_token_ids
from ..generation.sampling import sample
from ..modeling.adapters import POLICY
from ..runtime import model_thread

SIMULATE_ROWS = 32  # rows per generate call in simulate (prompts x K)
SIMULATE_JOB = "autopilot"


def validated_prompt(lab, prompt: str, cfg: GenerationConfig) -> str:
    require_prompt(prompt)  # before loading a model for it
    models = lab.models or lab.load_model()
    return check_prompt(models.tokenizer, models.model, prompt, cfg.max_new_tokens)


def generate_stream(lab, prompt: str, cfg: GenerationConfig | None = None) -> Iterator[dict]:
    """Yield {"texts": partial texts, "done": False, "tokens", "max_new_tokens", "elapsed_s", "eta_s"} while
    sampling, then the final {"texts", "done": True, "scores", "policy", "truncated", "seed", "prompt"}.

    The final event is also kept as lab.pending (with the session's name) until it is ranked or replaced, so a
    reloaded page gets its cards back. The prompt is checked, the job slot taken and sampling started before
    this returns: a refused prompt or a busy lab raises here, before a caller clears anything on screen.
    """
    cfg = cfg or GenerationConfig()
    lab.require_session()
    prompt = validated_prompt(lab, prompt, cfg)
    models = lab.models
    seed = cfg.seed if cfg.seed is not None else random.randrange(2**31)
    updates: queue.Queue = queue.Queue()
    eos = eos_token_ids(models.tokenizer, models.model)
    job = lab.jobs.acquire("generate")

    started = time.monotonic()

    def on_step(partial):
        # The first token at once (the card shows life within a second), then every 4: smooth enough and
        # keeps decoding cheap.
        if partial.shape[1] == 1 or partial.shape[1] % 4 == 0:
            tokens, elapsed = partial.shape[1], time.monotonic() - started
            # An upper bound: answers that reach EOS end sooner than max_new_tokens.
            eta = elapsed / tokens * (cfg.max_new_tokens - tokens)
            updates.put({"texts": decode_partial(models.tokenizer, partial, eos), "done": False, "tokens": tokens,
                         "max_new_tokens": cfg.max_new_tokens, "elapsed_s": elapsed, "eta_s": eta})

    def work():
        try:
            rollout = sample(models, [prompt] * cfg.k, cfg.max_new_tokens, cfg.temperature, cfg.top_p, seed=seed,
                             adapter=POLICY, on_step=on_step, stop_event=lab.jobs.stop_event)
            updates.put({"texts": rollout.texts, "done": True, "seed": seed,
                         "truncated": rollout.truncated.tolist()})
        except BaseException as err:  # handed to the consumer thread and raised there
            updates.put({"error": err})
        finally:
            lab.jobs.release(job)

    model_thread.submit(work)
    return _events(lab, prompt, updates)


def _events(lab, prompt: str, updates: queue.Queue) -> Iterator[dict]:
    """generate_stream's events as the model thread sends them; the final one gets scores and is kept."""
    while True:
        event = updates.get()
        if "error" in event:
            raise event["error"]
        if not event["done"]:
            yield event
            continue
        event["prompt"] = prompt
        # An answer cut at max_new_tokens can end inside a multi-byte character: keep whole characters only.
        event["texts"] = [t.rstrip("\ufffd") for t in event["texts"]]
        event["policy"] = lab.meta().policy_version
        event["scores"] = None
        if lab.has_reward_model:
            try:
                event["scores"] = lab.score(prompt, event["texts"], event["truncated"])
            except LabBusy:
                pass  # another job took the model in between: the cards show no score this time
        lab.pending = {**event, "session": lab.session.name}
        yield event
        return


def rank(lab, prompt: str, completions: list[str], ranking=None, verdict: str = "ranked",
         annotator: str = "human", policy: str | None = None, extra: dict | None = None) -> dict:
    """Durably record one ranking event (on disk and fsynced when this returns)."""
    session = lab.require_session()
    if not prompt or not str(prompt).strip():
        raise SessionError("The ranking has no prompt.")
    meta = session.read_meta()
    rec = session.add_ranking(prompt, completions, ranking or [], verdict=verdict, annotator=annotator,
                              policy=policy or meta.policy_version, round_=meta.round, extra=extra)
    pending = lab.pending
    if pending and pending["prompt"] == prompt and pending["texts"] == list(completions):
        lab.pending = None  # ranked: a reload no longer brings these cards back
    return rec


def pending(lab) -> dict | None:
    """The last generated cards of the open session that are not ranked yet, or None."""
    cards = lab.pending
    return cards if cards and lab.session is not None and cards["session"] == lab.session.name else None


def undo(lab) -> dict:
    """Retract the most recent active ranking."""
    session = lab.require_session()
    active, _ = session.rankings()
    if not active:
        raise SessionError("Nothing to undo: this session has no rankings.")
    target = active[-1]
    session.retract(target["id"])
    return target


def counts(lab) -> dict:
    active, demos = lab.rankings(), lab.demonstrations()
    return {"rankings": sum(r["verdict"] == "ranked" for r in active),
            "all_bad": sum(r["verdict"] == "all_bad" for r in active),
            "skipped": sum(r["verdict"] == "skipped" for r in active),
            "pairs": len(all_pairs(active, demos)), "demonstrations": len(demos)}


class ImportCount(int):
    """The number of pairs imported (an int, as before), with how many were skipped as already present."""
    skipped: int = 0


def import_pairs(lab, path: Path | str, annotator: str = "import") -> ImportCount:
    """Append pairs from a TRL/OpenRLHF JSONL file as two-card rankings, all or nothing.

    The whole file is checked before anything is written, then every new pair goes to disk in one write, so
    a bad line, a full disk or Ctrl-C leaves the session as it was. Pairs the session already has (a file
    imported twice) are skipped and counted.
    """
    pairs = read_trl(Path(path))
    session = lab.require_session()
    meta = session.read_meta()
    seen = {(p.prompt, p.chosen, p.rejected) for p in session_pairs(session.rankings()[0])}
    records = []
    for p in pairs:
        if (p.prompt, p.chosen, p.rejected) not in seen:
            seen.add((p.prompt, p.chosen, p.rejected))
            records.append(session.make_ranking(p.prompt, [p.chosen, p.rejected], [[0], [1]], annotator=annotator,
                                                policy=meta.policy_version, round_=meta.round))
    session.append_rankings(records)
    count = ImportCount(len(records))
    count.skipped = len(pairs) - len(records)
    return count


def simulate(lab, judge: str, n_prompts: int, cfg: GenerationConfig | None = None, seed: int = 0,
             prompts: list[str] | None = None, inline: bool = True):
    """Autopilot: generate K answers for n prompts and record the judge's rankings (annotator `judge:<name>`).

    Prompts come from `prompts`, else from the judge's scenario set (scenarios.prompts_for_judge), distinct
    while they last. Inline: an
    iterator of one row per prompt, then a summary row; otherwise a background Job the UI polls. Everything is
    checked before the job starts. A Stop drops the answers being generated; rankings already saved stay.
    Several prompts share one generate call (SIMULATE_ROWS rows): a decode step costs nearly the same
    for 32 rows as for 4 here, so 32 prompts x 4 answers take ~2.5x less time than one prompt at a time.
    """
    if not 1 <= int(n_prompts) <= 10000:
        raise LabError(f"--prompts must be between 1 and 10000, not {n_prompts}")
    fn = judges.get_judge(judge)
    cfg = cfg or GenerationConfig()
    lab.require_session()
    if lab.models is None:
        lab.load_model()
    chosen = builtin.sample_prompts(int(n_prompts), seed, prompts or scenarios.prompts_for_judge(judge))
    return lab.jobs.run(SIMULATE_JOB, lambda: _judged(lab, judge, fn, chosen, cfg, seed), inline)


def answers_by_prompt(lab, prompts: list[str], cfg: GenerationConfig, seed: int, on_step=None,
                      guard=contextlib.nullcontext) -> Iterator[tuple[int, list[tuple[str, list[str], list[bool]]]]]:
    """K answers from the current policy for each prompt, several prompts per sampling call (SIMULATE_ROWS
    rows: a decode step costs nearly the same for 32 rows as for 4). Yields (index of the chunk's first prompt,
    [(prompt, its K answers, which were cut)]) per call. on_step(first, size) makes the call's token callback;
    each call runs inside guard() (e.g. the job slot). Stopped propagates from a stopped call."""
    per_call = max(1, SIMULATE_ROWS // cfg.k)
    for start in range(0, len(prompts), per_call):
        chunk = prompts[start:start + per_call]
        rows = [p for p in chunk for _ in range(cfg.k)]
        with guard():
            rollout = model_thread.call(sample, lab.models, rows, cfg.max_new_tokens, cfg.temperature, cfg.top_p,
                                        seed * 100003 + start, POLICY,
                                        on_step=on_step(start, len(chunk)) if on_step else None,
                                        stop_event=lab.jobs.stop_event)
        yield start, [(prompt, rollout.texts[j * cfg.k:(j + 1) * cfg.k],
                       rollout.truncated[j * cfg.k:(j + 1) * cfg.k].tolist()) for j, prompt in enumerate(chunk)]


def _judged(lab, judge: str, fn, prompts: list[str], cfg: GenerationConfig, seed: int) -> Iterator[dict]:
    job, n, started, ranked = lab.jobs.current, len(prompts), time.monotonic(), 0

    def on_step(first, size):
        def show(partial):
            if job is not None and partial.shape[1] % 4 == 0:  # read by the UI's timer (job.phase)
                done = partial.shape[1] / cfg.max_new_tokens
                job.phase = {"text": f"prompts {first + 1}–{first + size} of {n}: token {partial.shape[1]} of "
                                     f"at most {cfg.max_new_tokens}", "progress": (first + done * size) / n}
        return show

    try:
        for start, answers in answers_by_prompt(lab, prompts, cfg, seed, on_step):
            for j, (prompt, texts, truncated) in enumerate(answers):
                groups, scores = judges.rank(fn, prompt, texts)
                rec = rank(lab, prompt, texts, groups, annotator=f"judge:{judge}",
                           extra={"judge_scores": scores, "truncated": truncated})
                index = start + j
                yield {"index": index, "step": index + 1, "prompt": prompt, "texts": texts, "truncated": truncated,
                       "ranking": groups, "scores": scores, "id": rec["id"], "progress": (index + 1) / n}
            ranked = start + len(answers)
            if job is not None:
                job.phase = {"text": f"{ranked} of {n} prompts ranked", "progress": ranked / n}
    except Stopped:
        yield {"summary": True, "stopped": True, "ranked": ranked, "seconds": time.monotonic() - started}
        return
    yield {"summary": True, "stopped": False, "ranked": n, "seconds": time.monotonic() - started}
