"""The PPO workflow: N steps against the reward model, a half-done step undone on Stop, a new policy version."""
from __future__ import annotations

import random
import time
from typing import Iterator

from ..algos.ppo import PastKLLimit, new_state, ppo_step
from ..config import PPOConfig
from ..data import prompts as builtin
from ..data.session import Session
from ..errors import LabError, Stopped
from ..modeling import checkpoints
from ..modeling.adapters import POLICY
from ..runtime import model_thread
from .lineage import save_version, training_data

JOB = "PPO"


def ppo(lab, steps: int, cfg: PPOConfig | None = None, inline: bool = True):
    """Run `steps` PPO updates; saves a new policy version at the end (or at a stop)."""
    cfg = cfg or PPOConfig()
    session = lab.require_session()
    if not 1 <= int(steps) <= 10000:
        raise LabError(f"steps must be between 1 and 10000, not {steps}")
    if not lab.has_reward_model:
        raise LabError("PPO needs a reward model: rank some answers and train one first.")
    return lab.jobs.run(JOB, lambda: _queued(lab, session, int(steps), cfg), inline)


def _queued(lab, session: Session, steps: int, cfg: PPOConfig) -> Iterator[dict]:
    """_rows on the model thread. Until it gets there (scoring for the rankings table may hold the model for a
    few seconds) the job says so, so the progress line answers at once."""
    if lab.jobs.current is not None:
        lab.jobs.current.phase = {"text": f"step 1 of {steps}: waiting for the model", "progress": 0.0}
    return model_thread.iterate(lambda: _rows(lab, session, steps, cfg))


def session_judge(lab):
    """(name, judge) of the simulated annotator that made most of the session's rankings, or (None, None)
    when people ranked it. PPO logs that judge's score of its samples as the gold score."""
    from collections import Counter

    from .. import judges
    from ..errors import JudgeError

    names = Counter(r.get("annotator", "") for r in lab.rankings() if r.get("verdict") == "ranked")
    name, count = names.most_common(1)[0] if names else ("", 0)
    if not name.startswith("judge:") or count * 2 < sum(names.values()):
        return None, None
    try:
        return name.split(":", 1)[1], judges.get_judge(name.split(":", 1)[1])
    except JudgeError:
        return None, None  # a custom judge module that is gone: no gold score, PPO still runs


MIN_RANKED_PROMPTS = 8


def _prompts(lab, n: int, rng: random.Random, per_prompt: int = 1) -> list[str]:
    """PPO's prompts: the session's ranked prompts, where the reward model knows what the person wants (a
    reward model scores prompts unlike any it saw with little meaning); the built-in set joins only while
    fewer than MIN_RANKED_PROMPTS were ranked."""
    ranked = list(dict.fromkeys(r["prompt"] for r in lab.rankings()))
    pool = ranked if len(ranked) >= MIN_RANKED_PROMPTS else ranked + [
        p for p in builtin.builtin_prompts() if p not in ranked]
    return [p for p in (rng.choice(pool) for _ in range(n // per_prompt)) for _ in range(per_prompt)]


def _rows(lab, session: Session, steps: int, cfg: PPOConfig) -> Iterator[dict]:
    models = lab.models
    meta = session.read_meta()
    state = new_state(models, cfg, kl_coef=meta.kl_coef, step=meta.ppo_steps)
    rng = random.Random(cfg.seed * 7919 + state.step)
    gold_name, gold = session_judge(lab)
    done, stopped, started = 0, False, time.time()
    job = lab.jobs.current

    def on_phase(what: str, fraction: float) -> None:
        # Read by the UI's timer (job.phase): a PPO step takes ~10 s or more, too long to show nothing.
        if job is not None:
            job.phase = {"text": f"step {done + 1} of {steps}: {what}", "progress": (done + fraction) / steps}

    previous, past_limit = None, None  # previous: the policy before the last update, for a KL-limit undo
    for _ in range(steps):
        snapshot = models.snapshot(POLICY)
        try:
            row, samples = ppo_step(models, _prompts(lab, cfg.batch_size, rng, cfg.samples_per_prompt), cfg, state, lab.jobs.stop_event,
                                    seed=cfg.seed * 1000003 + state.step, gold=gold, on_phase=on_phase)
        except Stopped:
            models.restore(POLICY, snapshot)  # a half-done step is undone: memory matches a finished step
            stopped = True
            break
        except PastKLLimit as past:
            # This policy's answers are past the limit: keep the one before the last update, whose answers
            # (the last logged step) were within it, and stop. Nothing was trained on these rollouts.
            past_limit = past
            if previous is not None:
                models.restore(POLICY, previous)
            break
        previous = snapshot
        done += 1
        row = {**row, "time": time.time(), "round": meta.round + 1}
        if gold_name:
            row["gold_judge"] = gold_name
        session.log_metrics([row])
        yield {**row, "samples": samples, "progress": done / steps}
    if job is not None:
        job.phase = {"text": "saving the new policy version", "progress": done / steps}
    undone = int(past_limit is not None and previous is not None)
    # "steps" counts the steps logged, an undone update's included; "undone" says whether the last was undone
    summary = {"phase": "ppo", "summary": True, "steps": done, "stopped": stopped,
               "seconds": round(time.time() - started, 2)}
    if past_limit is not None:
        state.kl_ctl.update(past_limit.kl, cfg.batch_size)  # the next run starts from a coefficient that saw it
        summary.update(kl_limit=past_limit.limit, kl_past_limit=round(past_limit.kl, 4), undone=undone,
                       message=kl_limit_message(past_limit, done, state.step))
    if done - undone:  # one step whose update was undone left the policy as it was: no new version
        rm = meta.reward_model or {}
        data = training_data(lab, meta, pairs=(rm.get("pairs_train") or 0) + (rm.get("pairs_eval") or 0),
                             reward_model_trained_at=rm.get("trained_at"))
        summary["policy_version"] = save_version(lab, session, meta, "ppo", data, cfg, summary,
                                                 extra_info={"steps": state.step}, ppo_steps=state.step,
                                                 kl_coef=state.kl_ctl.value)
    elif past_limit is not None:  # no update kept: the step count and the coefficient still move on
        session.update_meta(ppo_steps=state.step, kl_coef=state.kl_ctl.value)
    yield summary


def kl_limit_message(past: PastKLLimit, done: int, step: int) -> str:
    """What the run did at the KL limit, in words: `done` steps were logged, the last one numbered `step`."""
    if done == 0:
        return (f"stopped before its first update: the policy's KL from the reference is already "
                f"{past.kl:.3g} nats, past the limit of {past.limit:g}. Start from an earlier version or raise "
                "max_kl.")
    kept = ("the policy is as it was before this run, and no version was saved" if done == 1 else
            f"the policy kept is the one that answered at step {step}")
    return (f"stopped at the KL limit: the answers after step {step} were {past.kl:.3g} nats from the "
            f"reference, past {past.limit:g}, so step {step}'s update was undone; {kept}.")


def policy_versions(lab) -> list[str]:
    folder = lab.require_session().adapter_dir("policy")
    return ["base"] + sorted(p.name for p in folder.glob("v[0-9][0-9][0-9]") if checkpoints.is_complete(p))
