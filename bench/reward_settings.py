"""Reward-model settings side by side on one session: the same pairs and held-out split, one RewardConfig per
--set, each from the same seeded start. Prints one JSON line per setting: held-out accuracy, the estimate
without the epoch choice (eval/reward_accuracy_lopo), training accuracy, held-out accuracy by epoch and seconds.
Nothing is saved. Takes about one train-rm per setting; the trunk is computed once per lora_layers.
Usage: python bench/reward_settings.py --session SESSIONS_DIR/NAME --set "" --set "learning_rate=5e-4,lora_r=4"
(an empty --set is the defaults; values are read as JSON, else as strings: readout=mean)
"""
from __future__ import annotations

import argparse
import json
import time

from common import machine, open_session_lab, share_trunks


def parse_setting(text: str) -> dict:
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value.strip()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--session", required=True, help="SESSIONS_DIR/NAME")
    ap.add_argument("--set", dest="settings", action="append", default=[],
                    help="RewardConfig fields for one run, e.g. learning_rate=5e-4,lora_r=4; '' = defaults")
    args = ap.parse_args()

    from rlhf_lab import metrics as M
    from rlhf_lab.algos import reward as R
    from rlhf_lab.config import RewardConfig
    from rlhf_lab.runtime import model_thread

    lab = open_session_lab(args.session)
    pairs = lab.pairs()
    share_trunks(R)

    for text in args.settings or [""]:
        cfg = RewardConfig(**parse_setting(text))

        def run(cfg=cfg):
            lab.models.reset_reward_adapter(cfg.lora_r, cfg.lora_layers, cfg.readout, seed=cfg.seed)
            return list(R.train_reward_model(lab.models, pairs, cfg))

        started = time.time()
        rows = model_thread.call(run)
        s = rows[-1]
        by_epoch = [round(r[M.EVAL_RM_ACCURACY], 3) for r in rows[:-1] if M.EVAL_RM_ACCURACY in r]
        print(json.dumps({"session": args.session, "setting": text or "defaults",
                          "pairs": [s["pairs_train"], s["pairs_eval"]],
                          "held_out_accuracy": round(s[M.EVAL_RM_ACCURACY], 3),
                          "lopo": None if s[M.EVAL_RM_ACCURACY_LOPO] is None else round(s[M.EVAL_RM_ACCURACY_LOPO], 3),
                          "ci": [round(x, 2) for x in s["eval/accuracy_ci"]],
                          "train_accuracy_last_epoch": round(s[M.RM_ACCURACY], 3),
                          "length_r2": None if s.get(M.RM_LENGTH_R2) is None else round(s[M.RM_LENGTH_R2], 2),
                          "by_epoch": by_epoch, "seconds": round(time.time() - started),
                          "machine": machine()}), flush=True)


if __name__ == "__main__":
    main()
