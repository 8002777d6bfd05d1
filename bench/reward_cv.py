"""Cross-validated reward-model accuracy on one session: every prompt is held out once (k folds by prompt),
so all the session's pairs count as held-out pairs, and one split's luck does not decide the number.

Per fold it runs algos.reward.train_reward_model with the defaults on the other folds' prompts; the trunk of
each answer is computed once for all folds. Prints one JSON line: accuracy on all pairs, per fold, the length
rule's accuracy and the reward model's accuracy where that rule is wrong. Takes about k times one train-rm.
Usage: python bench/reward_cv.py --session SESSIONS_DIR/NAME [--folds 4] [--judge JUDGE: re-rank first]
"""
from __future__ import annotations

import argparse
import json
import random
import time

from common import machine, open_session_lab, share_trunks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--session", required=True, help="SESSIONS_DIR/NAME")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--judge", default=None, help="re-rank the session's answers with this judge first")
    args = ap.parse_args()

    from rlhf_lab import judges as J
    from rlhf_lab.algos import reward as R
    from rlhf_lab.config import RewardConfig
    from rlhf_lab.data.pairs import prompt_key, session_pairs
    from rlhf_lab.runtime import model_thread

    lab = open_session_lab(args.session)
    if args.judge:
        judge = J.get_judge(args.judge)
        pairs = session_pairs([{**rec, "verdict": "ranked", "ranking": J.rank(judge, rec["prompt"], rec["completions"])[0]}
                               for rec in lab.rankings()])
    else:
        pairs = lab.pairs()  # what train-rm trains on
    prompts = sorted({prompt_key(p.prompt) for p in pairs})
    random.Random(0).shuffle(prompts)
    fold_of = {p: i % args.folds for i, p in enumerate(prompts)}
    cfg = RewardConfig()
    share_trunks(R)  # each answer's trunk once for all folds

    def run_folds():
        totals = {"correct": 0.0, "pairs": 0, "rule": 0.0, "against_correct": 0.0, "against": 0, "folds": []}
        for fold in range(args.folds):
            R.split_by_prompt = lambda groups, _frac, f=fold: (
                [g for g in groups if fold_of[prompt_key(g.prompt)] != f],
                [g for g in groups if fold_of[prompt_key(g.prompt)] == f])
            lab.models.reset_reward_adapter(cfg.lora_r, cfg.lora_layers, cfg.readout, seed=cfg.seed)
            s = [row for row in R.train_reward_model(lab.models, pairs, cfg) if row.get("summary")][-1]
            n, n_against = s["pairs_eval"], s.get("pairs_against_length") or 0
            if not s.get("trained") or not n or s.get("eval/length_rule_accuracy") is None:
                print(json.dumps({"fold": fold, "skipped": "no held-out pairs or nothing trained"}), flush=True)
                continue
            totals["correct"] += s["eval/reward_accuracy"] * n
            totals["pairs"] += n
            totals["rule"] += s["eval/length_rule_accuracy"] * n
            totals["against_correct"] += (s.get("eval/reward_accuracy_against_length") or 0) * n_against
            totals["against"] += n_against
            totals["folds"].append(round(s["eval/reward_accuracy"], 3))
        return totals

    started = time.time()
    t = model_thread.call(run_folds)
    print(json.dumps({"session": args.session, "judge": args.judge or "as ranked", "folds": args.folds,
                      "pairs": t["pairs"], "cv_accuracy": round(t["correct"] / t["pairs"], 3),
                      "by_fold": t["folds"], "length_rule_accuracy": round(t["rule"] / t["pairs"], 3),
                      "pairs_against_length": t["against"],
                      "accuracy_against_length": round(t["against_correct"] / t["against"], 3) if t["against"] else None,
                      "seconds": round(time.time() - started), "machine": machine()}), flush=True)


if __name__ == "__main__":
    main()
