"""The DPO workflow: train the policy on the session's pairs (rankings and demonstrations) without a reward
model, log the run and save the next policy version."""
from __future__ import annotations

from ..algos.dpo import train_dpo
from ..config import DPOConfig
from ..data.pairs import count_pairs, groups_from_pairs
from ..errors import NotEnoughPairs
from ..runtime import model_thread
from .lineage import run_and_save, training_data

JOB = "DPO"


def dpo(lab, cfg: DPOConfig | None = None, inline: bool = True):
    """Inline: an iterator of metric rows (the last one the summary, with the new "policy_version"); otherwise
    a background Job. Bad input is refused before any job starts, so it changes nothing."""
    cfg = cfg or DPOConfig()
    session = lab.require_session()
    pairs = lab.pairs()
    n = count_pairs(groups_from_pairs(pairs))
    if n < 1:
        raise NotEnoughPairs("DPO needs preference pairs and this session has none: rank some answers (ties only, "
                             "'all bad' and 'skip' give no pairs), or write the answer you wanted on a card.")
    demonstrations = len(lab.demonstrations())

    def rows():
        data = training_data(lab, session.read_meta(), pairs=n, demonstrations=demonstrations)
        return run_and_save(lab, session, "dpo", train_dpo(lab.models, pairs, cfg, lab.jobs.stop_event), data, cfg)

    return lab.jobs.run(JOB, lambda: model_thread.iterate(rows), inline)
