"""Reward-model results per judge (by default the four scenario judges; name others, e.g. plain_words, with
--judges): held-out accuracy, pairs and training seconds.

By default each judge gets its own simulate run (32 prompts x 4). With --reuse SESSIONS_DIR/NAME, the
completions already in that session are re-ranked by each judge instead: the same answers, only the taste
changes, which isolates how learnable each judge is (and skips minutes of generation per judge).
Prints one JSON line per judge.
Usage: python bench/reward_judges.py [--judges concise,enthusiastic,no_lists,mentions:you] [--reuse DIR/NAME]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import machine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judges", default="concise,enthusiastic,no_lists,mentions:you")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--reuse", default=None, help="SESSIONS_DIR/NAME whose completions are re-ranked")
    ap.add_argument("--sessions-dir", default=None)
    args = ap.parse_args()

    from rlhf_lab import judges as J
    from rlhf_lab.config import GenerationConfig
    from rlhf_lab.lab import Lab
    from rlhf_lab.data.session import Session

    source = None
    if args.reuse:
        path = Path(args.reuse)
        source = Session.open(path.parent, path.name).rankings()[0]
    lab = Lab(args.sessions_dir or tempfile.mkdtemp(prefix="rm-judges-"))
    for judge in args.judges.split(","):
        name = "rm-" + judge.replace(":", "-")
        lab.open_session(name, create=name not in lab.list_sessions())
        fn = J.get_judge(judge)
        t = time.time()
        if source is not None:
            for rec in source:
                groups, scores = J.rank(fn, rec["prompt"], rec["completions"])
                lab.rank(rec["prompt"], rec["completions"], groups, annotator=f"judge:{judge}",
                         extra={"judge_scores": scores, "truncated": rec.get("truncated")})
        else:
            for _ in lab.simulate(judge, args.prompts, GenerationConfig(k=4), seed=0):
                pass
        ranking_s = time.time() - t
        counts = lab.counts()
        row = {"judge": judge, "rankings": counts["rankings"], "pairs": counts["pairs"],
               "completions_from": args.reuse or "simulate", "ranking_seconds": round(ranking_s, 1)}
        if counts["pairs"] < 2:
            print(json.dumps({**row, "note": "fewer than 2 pairs: nothing to train"}), flush=True)
            continue
        summary = [r for r in lab.train_reward() if r.get("summary")][-1]
        print(json.dumps({**row, "eval/reward_accuracy": summary["eval/reward_accuracy"],
                          "reward/accuracy": summary["reward/accuracy"], "pairs_train": summary["pairs_train"],
                          "pairs_eval": summary["pairs_eval"], "train_seconds": summary["seconds"],
                          "reward/length_r2": summary.get("reward/length_r2"),
                          "eval/length_rule_accuracy": summary.get("eval/length_rule_accuracy"),
                          "eval/reward_accuracy_against_length": summary.get("eval/reward_accuracy_against_length"),
                          "pairs_against_length": summary.get("pairs_against_length"),
                          "stopped": summary["stopped"], "machine": machine()}), flush=True)


if __name__ == "__main__":
    main()
