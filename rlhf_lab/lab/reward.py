"""The reward-model workflow: train on the session's pairs, save the best model, score answers (cached)."""
from __future__ import annotations

import time
from typing import Iterator

import torch

from .. import metrics as M
from ..algos.reward import train_reward_model
from ..config import RewardConfig
from ..data.pairs import Pair, count_pairs, groups_from_pairs, pairs_from_ranking
from ..data.session import Session
from ..diagnostics import reward_warnings
from ..errors import BrokenAdapter, ConfigError, LabBusy, LabError, NotEnoughPairs
from ..generation.chat import tokenize_scored
from ..modeling import checkpoints
from ..modeling.adapters import POLICY, REWARD
from ..runtime import model_thread
from .sessions import load_saved_reward

JOB = "train reward model"
SUMMARY_KEYS = (M.EVAL_RM_ACCURACY, "eval/accuracy_ci", M.EVAL_RM_ACCURACY_LOPO, M.EVAL_RM_LOSS, M.RM_LENGTH_R2,
                M.EVAL_LENGTH_RULE_ACCURACY, M.EVAL_RM_ACCURACY_AGAINST_LENGTH, "pairs_against_length", "length_rule",
                "eval/against_length_ci",
                "pairs_train",
                "pairs_eval", "readout", "warnings", "seconds", "step", "stopped", "epochs")


def train_reward(lab, cfg: RewardConfig | None = None, inline: bool = True):
    """Train the reward adapter on the session's pairs. Inline: an iterator of metric rows; otherwise a
    background Job. Checks everything before any job starts, so bad input changes nothing."""
    cfg = cfg or RewardConfig()
    session = lab.require_session()
    pairs = lab.pairs()
    n = count_pairs(groups_from_pairs(pairs))
    if n < 2:
        raise NotEnoughPairs(f"Only {n} usable pair(s) in this session: rank at least one more prompt first "
                             "(ties only, 'all bad' and 'skip' give no pairs).")
    saved = session.adapter_dir("reward")
    if cfg.continue_training and checkpoints.is_complete(saved):
        try:
            kept = checkpoints.readout_of(saved)
        except BrokenAdapter:  # the job sets an unreadable adapter aside and starts fresh, as it always has
            kept = cfg.readout
        if kept != cfg.readout:
            raise ConfigError(f"The saved reward model reads the answer at {kept!r}, and continuing keeps its "
                              f"read-out: choose {kept!r} to continue it, or train a new {cfg.readout!r} model "
                              "without 'continue'.")
    return lab.jobs.run(JOB, lambda: model_thread.iterate(lambda: _rows(lab, session, pairs, cfg)), inline)


def _rows(lab, session: Session, pairs: list[Pair], cfg: RewardConfig) -> Iterator[dict]:
    models = lab.models
    run = int(time.time())
    if cfg.continue_training and checkpoints.is_complete(session.adapter_dir("reward")):
        load_saved_reward(lab, session, cfg)
    else:
        models.reset_reward_adapter(cfg.lora_r, cfg.lora_layers, cfg.readout, seed=cfg.seed)
    round_ = session.read_meta().round
    saved = False
    try:
        for row in train_reward_model(models, pairs, cfg, lab.jobs.stop_event):
            row = {**row, "time": time.time(), "round": round_, "run": run}
            if row.get("summary") and row["trained"]:
                checkpoints.save_adapter(models, REWARD, session.adapter_dir("reward"),
                                         info={k: v for k, v in row.items() if not isinstance(v, dict)})
                prompts = len({p.prompt for p in pairs})
                row["warnings"] = reward_warnings(row, prompts, cfg.eval_fraction)
                session.update_meta(reward_model={"trained_at": row["time"], "prompts": prompts,
                                                  **{k: row.get(k) for k in SUMMARY_KEYS}})
                lab.score_cache.clear()
                saved = True
            elif row.get("summary"):  # nothing kept: of the warnings, only a spent time budget can apply
                row["warnings"] = reward_warnings(row)
            else:
                session.log_metrics([{k: v for k, v in row.items() if k not in ("progress", "eta_s")}])
            yield row
    finally:
        if not saved:  # stopped or failed before a model was kept: memory goes back to what is on disk
            load_saved_reward(lab, session, cfg)
        models.use(POLICY)


def score(lab, prompt: str, completions: list[str], truncated: list[bool] | None = None) -> list[float]:
    """Reward-model scores of completions (cached per reward model); cut-off ones are scored without EOS."""
    if not lab.has_reward_model:
        raise LabError("No reward model yet: train one on the Reward Model tab (or `train-rm`).")
    if lab.jobs.current is not None and not model_thread.on_model_thread():
        raise LabBusy(lab.jobs.busy_message())  # the model thread is busy until that job ends
    stamp = str((lab.meta().reward_model or {}).get("trained_at"))
    cut = [bool(t) for t in (truncated or [False] * len(completions))]
    keys = [(stamp, prompt, c, t) for c, t in zip(completions, cut)]
    missing = [k for k in dict.fromkeys(keys) if k not in lab.score_cache]
    if missing:
        model_thread.call(_score_missing, lab, missing)
    return [lab.score_cache[k] for k in keys]


@torch.no_grad()
def _score_missing(lab, keys: list[tuple]) -> None:
    models = lab.models
    for start in range(0, len(keys), 8):
        chunk = keys[start:start + 8]
        ids, mask, answer = tokenize_scored(models.tokenizer, [k[1] for k in chunk], [k[2] for k in chunk],
                                            models.device, RewardConfig().max_length, [k[3] for k in chunk])
        for key, value in zip(chunk, models.score(ids, mask, answer_mask=answer).tolist()):
            lab.score_cache[key] = value


def agreement(lab, record: dict) -> tuple[int, int] | None:
    """(pairs where the reward model agrees with the ranking, pairs) for one ranking record."""
    pairs = pairs_from_ranking(record)
    if not pairs or not lab.has_reward_model:
        return None
    scores = dict(zip(record["completions"], score(lab, record["prompt"], record["completions"],
                                                   record.get("truncated"))))
    return sum(scores[p.chosen] > scores[p.rejected] for p in pairs), len(pairs)
