"""Generation throughput for K=4 completions x 64 new tokens, 4bit and fp32, plus model load times.

Prints one JSON line per precision: median tokens/s over several runs after a warm-up.
Usage: python bench/generate.py [--runs N]
"""
from __future__ import annotations

import argparse
import json
import time

from common import machine, median


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--precisions", default="4bit,fp32")
    args = ap.parse_args()

    from rlhf_lab.runtime import model_thread as worker
    from rlhf_lab.config import ModelConfig
    from rlhf_lab.generation.sampling import choose_decoder, sample
    from rlhf_lab.modeling.adapters import POLICY, load_lab_models

    def run(precision: str) -> dict:
        t = time.perf_counter()
        models = load_lab_models(ModelConfig(precision=precision))
        note = choose_decoder(models)
        load_s = time.perf_counter() - t
        rates = []
        for i in range(args.runs + 1):
            t = time.perf_counter()
            # tokens/s counts real response tokens (up to each answer's EOS)
            rollout = sample(models, ["Describe the ocean in a few words."] * 4, 64, 0.8, 0.95, seed=i,
                             adapter=POLICY)
            dt = time.perf_counter() - t
            if i:
                rates.append(float(rollout.response_mask.sum()) / dt)
        return {"precision": precision, "k": 4, "max_new_tokens": 64, "median_tokens_per_s": round(median(rates), 1),
                "runs": [round(r, 1) for r in rates], "load_s": round(load_s, 2), "path": note, "machine": machine()}

    for precision in args.precisions.split(","):
        print(json.dumps(worker.call(run, precision)), flush=True)


if __name__ == "__main__":
    main()
