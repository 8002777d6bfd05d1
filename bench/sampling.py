"""The lab's sampling against plain transformers `generate`, measured side by side in one run.

Both sample the same chat-templated prompts, 64 new tokens per row with EOS suppressed (every row produces
all 64), batch 8 and batch 4; median tokens/s of --runs runs after a warm-up. "lab" is the real decode path
of the ranking tab, simulate and PPO (generation.sampling.sample, policy adapter on); "transformers" is
AutoModelForCausalLM in fp32 (bf16 on CUDA) from the same weights, `model.generate(do_sample=True)`.
Prints one JSON line per batch size with the ratio, plus the path the lab chose and peak memory.
Usage: python bench/sampling.py [--runs 3] [--device cpu|cuda] [--tokens 64]
"""
from __future__ import annotations

import argparse
import json
import time

from common import machine, median, peak_rss_mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batches", default="8,4")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--model", default="default")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from rlhf_lab.config import ModelConfig
    from rlhf_lab.data.prompts import sample_prompts
    from rlhf_lab.generation.chat import encode_prompts
    from rlhf_lab.generation.decode import eos_token_ids
    from rlhf_lab.generation.sampling import choose_decoder, sample
    from rlhf_lab.modeling.adapters import POLICY, load_lab_models
    from rlhf_lab.runtime import model_thread

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def run() -> list[dict]:
        models = load_lab_models(ModelConfig(model=args.model), device=device)
        note = choose_decoder(models)
        eos = sorted(eos_token_ids(models.tokenizer, models.model))
        plain = AutoModelForCausalLM.from_pretrained(models.path, dtype=torch.bfloat16 if device.type == "cuda"
                                                     else torch.float32).to(device).eval()
        out = []
        for batch in [int(b) for b in args.batches.split(",")]:
            prompts = sample_prompts(batch, seed=0)
            ids, mask = encode_prompts(models.tokenizer, prompts, device)
            rates = {"transformers": [], "lab": []}
            for i in range(args.runs + 1):
                t = time.perf_counter()
                with torch.no_grad():
                    plain.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_p=1.0,
                                   max_new_tokens=args.tokens, min_new_tokens=args.tokens, suppress_tokens=eos,
                                   pad_token_id=models.tokenizer.pad_token_id)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                dt_plain = time.perf_counter() - t
                t = time.perf_counter()
                rollout = sample(models, prompts, args.tokens, 1.0, 1.0, seed=i, adapter=POLICY,
                                 suppress_eos=True)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                dt_lab = time.perf_counter() - t
                assert int(rollout.response_mask.sum()) == batch * args.tokens
                if i:  # the first run of each is the warm-up
                    rates["transformers"].append(batch * args.tokens / dt_plain)
                    rates["lab"].append(batch * args.tokens / dt_lab)
            row = {"batch": batch, "new_tokens": args.tokens,
                   "transformers_tokens_per_s": round(median(rates["transformers"]), 1),
                   "lab_tokens_per_s": round(median(rates["lab"]), 1),
                   "ratio": round(median(rates["lab"]) / median(rates["transformers"]), 2),
                   "runs": {k: [round(r, 1) for r in v] for k, v in rates.items()},
                   "lab_path": note, "peak_rss_mb": round(peak_rss_mb(), 0), "machine": machine()}
            if device.type == "cuda":
                row["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 0)
            out.append(row)
        return out

    for row in model_thread.call(run):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
