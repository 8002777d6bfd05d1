"""Reward training stopped on a split of the training prompts instead of the held-out ones.

train-rm keeps the epoch with the lowest held-out loss, so its held-out accuracy is read on the pairs that
chose the epoch (`eval/reward_accuracy_lopo` estimates by how much that flatters it). The textbook remedy is a
third split: set aside some training prompts to choose the epoch and leave the held-out ones untouched. This
runs that on one session: the same held-out prompts as train-rm, a share of the training prompts (by the
same hash order) to stop on, the defaults otherwise, and prints one JSON line with the held-out accuracy at
the epoch the stop split kept and at every epoch. Nothing is saved. Takes about one train-rm.
Usage: python bench/reward_stop_split.py --session SESSIONS_DIR/NAME [--stop-fraction 0.15] [--readout R]
"""
from __future__ import annotations

import argparse
import json
import time

from common import machine, open_session_lab


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--session", required=True, help="SESSIONS_DIR/NAME")
    ap.add_argument("--stop-fraction", type=float, default=0.15, help="share of the training prompts to stop on")
    ap.add_argument("--readout", default=None)
    args = ap.parse_args()

    from rlhf_lab.algos import reward as R
    from rlhf_lab.algos.stats import LOSS_TOLERANCE
    from rlhf_lab.config import RewardConfig
    from rlhf_lab.runtime import model_thread

    lab = open_session_lab(args.session)
    pairs = lab.pairs()
    cfg = RewardConfig(**({"readout": args.readout} if args.readout else {}))
    split, evaluate, held, log = R.split_by_prompt, R.evaluate, [], []

    def three_way(groups, fraction):
        train, test = split(groups, fraction)
        held[:] = test
        return split(train, args.stop_fraction)  # (train, stop): training stops on the second

    def both(models, groups, cache, batch=4):
        stop, test = evaluate(models, groups, cache, batch), evaluate(models, held, cache, batch)
        log.append({"stop_loss": stop["loss"], "test_accuracy": round(test["accuracy"], 3),
                    "test_pairs": test["pairs"]})
        return stop

    R.split_by_prompt, R.evaluate = three_way, both

    def run():
        lab.models.reset_reward_adapter(cfg.lora_r, cfg.lora_layers, cfg.readout, seed=cfg.seed)
        return [row for row in R.train_reward_model(lab.models, pairs, cfg) if row.get("summary")][-1]

    started = time.time()
    summary = model_thread.call(run)
    kept, best = None, float("inf")
    for e, row in enumerate(log):  # training's own rule for the evaluation it keeps
        if row["stop_loss"] < best - LOSS_TOLERANCE:
            kept, best = e, row["stop_loss"]
    if kept is None:
        raise SystemExit(f"nothing was evaluated: {summary}")
    print(json.dumps({"session": args.session, "readout": cfg.readout, "stop_fraction": args.stop_fraction,
                      "pairs_train": summary["pairs_train"], "pairs_stop": summary["pairs_eval"],
                      "pairs_held_out": log[kept]["test_pairs"], "epoch_kept": kept,
                      "held_out_accuracy": log[kept]["test_accuracy"],
                      "held_out_accuracy_by_epoch": [e["test_accuracy"] for e in log],
                      "stop_loss_by_epoch": [round(e["stop_loss"], 4) for e in log],
                      "seconds": round(time.time() - started), "machine": machine()}), flush=True)


if __name__ == "__main__":
    main()
