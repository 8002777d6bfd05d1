"""Reward-model results per built-in judge: simulate 32 prompts x 4 with the judge, then train-rm.

Prints one JSON line per judge with held-out accuracy, training accuracy, pairs and seconds.
Usage: python bench/reward_judges.py [--judges concise,enthusiastic,no_lists,mentions:you] [--prompts 32]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

from common import machine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judges", default="concise,enthusiastic,no_lists,mentions:you")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--sessions-dir", default=None)
    args = ap.parse_args()

    from rlhf_lab.config import GenerationConfig
    from rlhf_lab.engine import Lab

    lab = Lab(args.sessions_dir or tempfile.mkdtemp(prefix="rm-judges-"))
    for judge in args.judges.split(","):
        name = "rm-" + judge.replace(":", "-")
        lab.open_session(name, create=name not in lab.list_sessions())
        t = time.time()
        for _ in lab.simulate(judge, args.prompts, GenerationConfig(k=4), seed=0):
            pass
        simulate_s = time.time() - t
        counts = lab.counts()
        if counts["pairs"] < 2:
            print(json.dumps({"judge": judge, **counts, "note": "fewer than 2 pairs: nothing to train"}))
            continue
        summary = [row for row in lab.train_reward() if row.get("summary")][-1]
        print(json.dumps({"judge": judge, "eval/reward_accuracy": summary["eval/reward_accuracy"],
                          "reward/accuracy": summary["reward/accuracy"], "pairs_train": summary["pairs_train"],
                          "pairs_eval": summary["pairs_eval"], "train_seconds": summary["seconds"],
                          "stopped": summary["stopped"], "simulate_seconds": round(simulate_s, 1),
                          "rankings": counts["rankings"], "machine": machine()}), flush=True)


if __name__ == "__main__":
    main()
