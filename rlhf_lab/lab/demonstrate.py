"""Demonstrations: the answer a person wanted, written on a ranking card or from the CLI; a judge's best of K
answers (for demos and tests); TRL SFT JSONL in and out. Every write is durable and all-or-nothing."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .. import judges, scenarios
from ..config import GenerationConfig
from ..data import demonstrations as demos
from ..data import prompts as builtin
from ..errors import LabError, SessionError
from .annotate import ImportCount, answers_by_prompt


def demonstrate(lab, prompt: str, completion: str, shown: list[str] | None = None,
                shown_truncated: list[bool] | None = None, ranking_id: str | None = None,
                annotator: str = "human") -> dict:
    """Durably record one demonstration (on disk and fsynced when this returns). `shown` are the answers the
    card showed: the demonstration counts as preferred over each of them."""
    session = lab.require_session()
    meta = session.read_meta()
    rec = demos.make(prompt, completion, shown, shown_truncated, ranking_id, annotator, meta.policy_version,
                     meta.round)
    demos.append(session.root, [rec])
    return rec


def demonstrations(lab) -> list[dict]:
    """The session's active demonstrations, oldest first (lines that cannot be read are skipped)."""
    return demos.read(lab.require_session().root)[0]


def undo_demonstration(lab) -> dict:
    """Retract the newest demonstration (an appended retraction; nothing is edited in place)."""
    session = lab.require_session()
    active = demos.read(session.root)[0]
    if not active:
        raise SessionError("Nothing to undo: this session has no demonstrations.")
    demos.append(session.root, [demos.retraction(active[-1]["id"])])
    return active[-1]


def export_demonstrations(lab, path: Path | str) -> int:
    return demos.export_sft(demonstrations(lab), Path(path))


def import_demonstrations(lab, path: Path | str, annotator: str = "import") -> ImportCount:
    """Append the rows of a TRL prompt-completion JSONL file, all or nothing; rows the session already has
    (same prompt and answer) are skipped and counted."""
    rows = demos.read_sft(Path(path))
    session = lab.require_session()
    meta = session.read_meta()
    seen = {(d["prompt"], d["completion"]) for d in demonstrations(lab)}
    records = []
    for prompt, completion in rows:
        if (prompt, completion) not in seen:
            seen.add((prompt, completion))
            records.append(demos.make(prompt, completion, annotator=annotator, policy=meta.policy_version,
                                      round_=meta.round))
    demos.append(session.root, records)
    count = ImportCount(len(records))
    count.skipped = len(rows) - len(records)
    return count


def write_demonstrations(lab, judge: str, n: int, cfg: GenerationConfig | None = None,
                         seed: int = 0) -> Iterator[dict]:
    """A judge writes n demonstrations: for prompts of its prompt set in turn, sample K answers from the current policy
    and keep the judge's favourite among those that finished (with EOS) as the demonstration, the K answers
    as the ones it was preferred over. Prompts with no finished answer are passed over (at most 4n tried).
    Yields one row per demonstration written."""
    if not 1 <= int(n) <= 1000:
        raise LabError(f"the number of demonstrations must be between 1 and 1000, not {n}")
    fn = judges.get_judge(judge)
    cfg = cfg or GenerationConfig()
    lab.require_session()
    if lab.models is None:
        lab.load_model()
    prompts = builtin.sample_prompts(4 * int(n), seed, scenarios.prompts_for_judge(judge))  # where its taste shows
    written = 0
    guard = lambda: lab.jobs.inline("write demonstrations")  # noqa: E731 - one sampling call at a time
    for _, answers in answers_by_prompt(lab, prompts, cfg, seed, guard=guard):
        for prompt, texts, cut in answers:
            finished = [i for i, text in enumerate(texts) if not cut[i] and text.strip()]
            if written == n or not finished:
                continue
            scores = [float(fn(prompt, text)) for text in texts]
            best = max(finished, key=lambda i: scores[i])
            rec = demonstrate(lab, prompt, texts[best], texts, cut, annotator=f"judge:{judge}")
            written += 1
            yield {"index": written - 1, "prompt": prompt, "completion": rec["completion"], "score": scores[best],
                   "id": rec["id"], "progress": written / n}
        if written == n:
            return
