"""A workshop scenario's whole loop, headless: autopilot -> reward model -> DPO (or PPO) -> evaluate, timed
per stage."""
from __future__ import annotations

import dataclasses
import time
from typing import Iterator

from .. import scenarios
from ..config import DPOConfig, PPOConfig
from ..errors import ConfigError, LabError
from ..scenarios import Scenario


def use_scenario(lab, name: str) -> Scenario:
    """The scenario, recorded on the open session (the story and the report name it)."""
    scenario = scenarios.get(name)
    session = lab.require_session()
    session.update_meta(extra={**session.read_meta().extra, "scenario": scenario.name})
    return scenario


def _ppo(lab, scenario: Scenario, out: dict, seed: int) -> Iterator[dict]:
    rows, undone = [], 0
    for row in lab.ppo(scenario.ppo_steps, PPOConfig(seed=seed)):
        if row.get("summary"):
            if row.get("message"):  # it stopped at the KL limit: the summary says so
                out["ppo_message"] = row["message"]
            undone = row.get("undone", 0)
        else:
            rows.append(row)
            yield row
    if rows:
        for key in ("objective/scores", "objective/gold_scores", "objective/kl", "val/response_length"):
            if key in rows[0]:
                out[f"first/{key}"], out[f"last/{key}"] = rows[0][key], rows[-1][key]
    out["ppo_steps"] = len(rows) - undone  # updates the policy kept


def _dpo(lab, scenario: Scenario, out: dict, seed: int) -> Iterator[dict]:
    rows, summary = [], {}
    for row in lab.dpo(DPOConfig(seed=seed)):
        if row.get("summary"):
            summary = row
        else:
            rows.append(row)
            yield row
    for key in ("rewards/margins", "eval/rewards/accuracies"):  # training rows and held-out rows alternate
        seen = [row[key] for row in rows if key in row]
        if seen:
            out[f"last/{key}"] = seen[-1]
    out["dpo_steps"] = sum(1 for row in rows if "loss/dpo" in row)  # held-out rows are not steps
    # Without held-out prompts DPO's "eval/" numbers are on its training pairs: say which they are.
    out["dpo_held_out"] = bool(summary.get("held_out"))


# How each algorithm trains the policy from the session.
TRAINERS = {"ppo": _ppo, "dpo": _dpo}


def run_scenario(lab, name: str, seed: int = 0) -> Iterator[dict]:
    """Every stage's rows as {"stage": ..., **row}, then one summary row: counts, reward-model accuracy, the
    policy's change, the judge's score of policy and original model on the scenario's prompts (unranked
    ones first), and the seconds of each stage."""
    scenario = scenarios.get(name)
    train = TRAINERS.get(scenario.algorithm)
    if train is None:
        raise ConfigError(f"Scenario {name!r} asks for {scenario.algorithm!r}, which this lab cannot train; "
                          f"it trains with {', '.join(TRAINERS)}.")
    use_scenario(lab, name)
    out = {"scenario": scenario.name, "judge": scenario.judge, "seed": seed, "seconds": {}}
    started = time.time()

    def lap(stage: str) -> None:
        out["seconds"][stage] = round(time.time() - started - sum(out["seconds"].values()), 1)

    for row in lab.simulate(scenario.judge, scenario.n_prompts, scenario.generation, seed=seed,
                            prompts=scenario.prompts()):
        yield {"stage": "autopilot", **row}
    lap("autopilot")
    out.update(lab.counts())
    summary = {}
    for row in lab.train_reward(dataclasses.replace(scenario.reward, seed=seed)):
        summary = row
        yield {"stage": "reward", **row}
    if summary.get("stopped") == "stop" or (not summary.get("trained") and scenario.algorithm == "ppo"):
        raise LabError("The reward model was not trained (stopped, or too few pairs); the loop stops here.")
    out["reward_trained"] = bool(summary.get("trained"))  # DPO goes on without it: it is there for the story
    out["reward_stopped"] = summary.get("stopped")  # "time": the scenario's budget ended it, not early stopping
    out.update({k: summary.get(k) for k in ("eval/reward_accuracy", "eval/reward_accuracy_lopo", "pairs_eval",
                                            "reward/length_r2", "eval/reward_accuracy_against_length",
                                            "pairs_against_length")})
    lap("reward")
    for row in train(lab, scenario, out, seed):
        yield {"stage": scenario.algorithm, **row}
    lap(scenario.algorithm)
    result = lab.evaluate(scenario.judge, scenario.eval_prompts, seed=seed + 1234)
    out.update({k: result[k] for k in ("policy", "policy_score", "reference_score", "score_gain", "score_gain_ci",
                                       "kl", "kl_k3", "policy_length",
                                       "reference_length", "policy_finished", "reference_finished")})
    lap("evaluate")
    out["seconds"]["total"] = round(time.time() - started, 1)
    yield {"summary": True, **out}
