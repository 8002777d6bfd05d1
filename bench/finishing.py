"""How many of the default model's answers finish (EOS) within N tokens, and what the judges can see in them.

Samples `--prompts` built-in prompts x K with the lab's own sampler (the path the ranking tab, simulate and
PPO use) up to `--cap` tokens and prints one JSON line: the share finished within each threshold, the median
length, and for each of the four scenario judges (concise, enthusiastic, no_lists, mentions:you) the share of
answers it scores above its minimum.
Usage: python bench/finishing.py [--prompts 32 --k 4 --cap 320 --temperature 0.8 --prompt-set all --system "..."]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from common import machine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--cap", type=int, default=320)
    ap.add_argument("--temperature", type=float, default=None, help="default: GenerationConfig's")
    ap.add_argument("--top-p", type=float, default=None)
    ap.add_argument("--system", default=None, help="system prompt; 'none' for none; default: the lab's")
    ap.add_argument("--prompt-set", default="general", help="a prompt set name (data/prompts.set_names) or 'all'")
    ap.add_argument("--show", type=int, default=0, help="print this many answers that did not finish")
    ap.add_argument("--dump", default=None, help="write every answer as JSONL here (prompt, text, tokens, finished)")
    args = ap.parse_args()

    from rlhf_lab import judges as J
    from rlhf_lab.config import GenerationConfig, ModelConfig
    from rlhf_lab.data.prompts import prompt_set, sample_prompts, set_names
    from rlhf_lab.generation.sampling import sample
    from rlhf_lab.modeling.adapters import load_lab_models

    gen = GenerationConfig()
    temperature = args.temperature if args.temperature is not None else gen.temperature
    top_p = args.top_p if args.top_p is not None else gen.top_p
    model_kw = {} if args.system is None else {"system_prompt": None if args.system == "none" else args.system}
    models = load_lab_models(ModelConfig(**model_kw), 4)
    names = set_names() if args.prompt_set == "all" else [args.prompt_set]
    pool = [p for name in names for p in prompt_set(name)]
    prompts = sample_prompts(args.prompts, 0, pool)
    rows = [p for p in prompts for _ in range(args.k)]
    lengths, finished, texts = [], [], []
    started = time.time()
    for i in range(0, len(rows), 32):
        r = sample(models, rows[i:i + 32], args.cap, temperature, top_p, seed=i)
        lengths += r.response_lengths.tolist()
        finished += (~r.truncated).tolist()
        texts += r.texts
    n = len(rows)
    within = {str(t): round(sum(1 for L, f in zip(lengths, finished) if f and L <= t) / n, 3)
              for t in (64, 96, 128, 160, 192, 256, args.cap) if t <= args.cap}
    judge_names = ["concise", "enthusiastic", "no_lists", "mentions:you"]
    signal = {}
    for name in judge_names:
        fn = J.get_judge(name)
        scores = [fn(p, t) for p, t in zip(rows, texts)]
        signal[name] = {"distinct_scores": len(set(scores)),
                        "share_above_min": round(sum(s > min(scores) for s in scores) / n, 3)}
    print(json.dumps({"answers": n, "prompt_set": args.prompt_set, "cap": args.cap, "temperature": temperature, "top_p": top_p,
                      "system": models.tokenizer.lab_system_prompt, "finished_within": within,
                      "median_length": statistics.median(lengths), "judge_signal": signal,
                      "seconds": round(time.time() - started, 1), "machine": machine()}), flush=True)
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as f:
            for p, t, L, fin in zip(rows, texts, lengths, finished):
                f.write(json.dumps({"prompt": p, "text": t, "tokens": L, "finished": fin}) + "\n")
    shown = 0
    for p, t, f in zip(rows, texts, finished):
        if not f and shown < args.show:
            print("----", p, "\n", t[:600])
            shown += 1


if __name__ == "__main__":
    main()
