"""Reward training's optional time budget, on a tiny model with a clock that moves one second per reading, so
the budget ends training at the same point on every machine."""
from types import SimpleNamespace

from rlhf_lab import metrics as M
from rlhf_lab.algos import reward as R
from rlhf_lab.config import RewardConfig
from rlhf_lab.data.pairs import Pair
from rlhf_lab.runtime import model_thread as worker


def fake_clock(monkeypatch):
    ticks = iter(range(1, 10**6))
    monkeypatch.setattr(R, "time", SimpleNamespace(monotonic=lambda: float(next(ticks))))


def train(models, cfg):
    # 4 prompts: one held out, three trained on, all three in one step per epoch (batch_rankings 4)
    pairs = [Pair(f"prompt {i}", "short", "a much longer answer " * 3, f"r{i}") for i in range(4)]
    return list(worker.iterate(lambda: R.train_reward_model(models, pairs, cfg)))


def test_a_budget_spent_at_an_epochs_start_adds_no_evaluation(tiny_models, monkeypatch):
    # Readings: start 1; epoch 1's step reads 2 (check), 3, 4, 5 and its evaluation 6. Epoch 2's check reads
    # 7: 6 s past the start, over the 3 s budget, before any step of epoch 2.
    fake_clock(monkeypatch)
    rows = train(tiny_models, RewardConfig(epochs=8, max_seconds=3, eval_fraction=0.25, batch_rankings=4))
    evaluations = [r for r in rows[:-1] if M.EVAL_RM_ACCURACY in r]
    summary = rows[-1]
    assert summary["summary"] and summary["stopped"] == "time" and summary["trained"]
    assert summary["pairs_train"] == 3 and summary["pairs_eval"] == 1
    assert len(evaluations) == 1 and summary["step"] == 1 and summary["epochs"] == 1 and summary["epochs_max"] == 8
    assert summary[M.RM_ACCURACY] is not None  # epoch 1's training accuracy, not an empty epoch 2's


def test_the_time_left_caps_the_eta(tiny_models, monkeypatch):
    # A step takes 4 readings and an evaluation 1, so step k ends 3 + 5 (k - 1) s after the start. Patience 2
    # cannot end training before the third evaluation, so steps 1-3 always run.
    fake_clock(monkeypatch)
    rows = train(tiny_models, RewardConfig(epochs=8, max_seconds=30, eval_fraction=0.25, batch_rankings=4))
    eta = [r["eta_s"] for r in rows if "eta_s" in r]
    assert eta[0] == 21.0  # 3 s a step x 7 steps left: inside the budget's 27 s left
    assert eta[1] == 22.0  # 30 - 8 s left, not 4 s a step x 6 steps
    assert eta[2] == 17.0  # 30 - 13, not 13/3 s a step x 5 steps
    assert all(e <= 30 for e in eta)


def test_a_budget_spent_before_the_first_step_trains_and_evaluates_nothing(tiny_models, monkeypatch):
    from rlhf_lab.diagnostics import reward_warnings

    fake_clock(monkeypatch)
    rows = train(tiny_models, RewardConfig(epochs=8, max_seconds=0.5, eval_fraction=0.25, batch_rankings=4))
    assert len(rows) == 1  # no step, no evaluation: only the summary
    summary = rows[0]
    assert summary["stopped"] == "time" and not summary["trained"] and summary["step"] == 0
    assert summary["epochs"] == 0 and summary[M.EVAL_RM_ACCURACY] is None
    assert reward_warnings(summary)[0].startswith("Training stopped at its time budget (0.5 s) before its first "
                                                  "step: nothing was trained or saved.")
