"""Time to the first streamed token: from calling Lab.generate_stream (what the Generate button does) to the
first event that carries text, and to the final event, for K answers to one prompt. The model is loaded and
warmed up first (start-up is bench/cold_start.py's business). Prints one JSON line with medians of --runs.
Usage: python bench/first_token.py [--runs 5] [--k 4]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

from common import machine, median, peak_rss_mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--k", type=int, default=4)
    args = ap.parse_args()

    from rlhf_lab.config import GenerationConfig
    from rlhf_lab.data.prompts import sample_prompts
    from rlhf_lab.lab import Lab

    lab = Lab(tempfile.mkdtemp(prefix="ttft-"))  # the device the lab picks itself (CUDA where there is one)
    lab.open_session("ttft", create=True)
    cfg = GenerationConfig(k=args.k)
    prompts = sample_prompts(args.runs + 1, seed=3)
    first, total, tokens = [], [], []
    for i, prompt in enumerate(prompts):
        started = time.perf_counter()
        t_first = None
        for event in lab.generate_stream(prompt, cfg):
            if t_first is None and any(event["texts"]):
                t_first = time.perf_counter() - started
            final = event
        if i == 0:
            continue  # warm-up
        first.append(t_first)
        total.append(time.perf_counter() - started)
        tokens.append(max(len(lab.models.tokenizer(t)["input_ids"]) for t in final["texts"]))
    print(json.dumps({"k": args.k, "runs": args.runs, "first_token_s": round(median(first), 3),
                      "first_token_s_max": round(max(first), 3), "all_answers_s": round(median(total), 2),
                      "longest_answer_tokens": median(tokens), "decode_path": lab.decode_note,
                      "peak_rss_mb": round(peak_rss_mb()), "machine": machine()}), flush=True)


if __name__ == "__main__":
    main()
