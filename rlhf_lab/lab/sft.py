"""The SFT workflow: train the policy on the session's demonstrations, log the run and save the next version."""
from __future__ import annotations

from ..algos.sft import train_sft
from ..config import SFTConfig
from ..errors import NoDemonstrations
from ..runtime import model_thread
from .lineage import run_and_save, training_data

JOB = "SFT"


def sft(lab, cfg: SFTConfig | None = None, inline: bool = True):
    """Inline: an iterator of metric rows (the last one the summary, with the new "policy_version"); otherwise
    a background Job. Bad input is refused before any job starts, so it changes nothing."""
    cfg = cfg or SFTConfig()
    session = lab.require_session()
    examples = [(d["prompt"], d["completion"]) for d in lab.demonstrations()]
    if not examples:
        raise NoDemonstrations("SFT needs demonstrations and this session has none: write the answer you wanted "
                               "under the cards on the ranking tab, `python -m rlhf_lab demonstrate`, or import "
                               "a TRL SFT file.")

    def rows():
        data = training_data(lab, session.read_meta(), demonstrations=len(examples))
        return run_and_save(lab, session, "sft", train_sft(lab.models, examples, cfg, lab.jobs.stop_event), data, cfg)

    return lab.jobs.run(JOB, lambda: model_thread.iterate(rows), inline)
