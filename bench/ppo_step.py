"""Time the standard PPO step: 8 rollouts x 64 new tokens, 4 PPO epochs, SmolLM2-135M nf4, LoRA r=16.

Prints one JSON line: median_step_s (after a warm-up), generate_tokens_per_s (the lab's own sampling of the
same batch), transformers_generate_s (plain transformers fp32 `generate` of 8 x 64 tokens, EOS suppressed,
measured in the same run) and step_over_transformers_generate (the step's time as a multiple of that), the
mean rollout length, peak memory and the machine.
Usage: python bench/ppo_step.py [--steps N] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import json
import time

from common import machine, median, peak_rss_mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5, help="timed steps after one warm-up step")
    ap.add_argument("--model", default="default")
    ap.add_argument("--precision", default="4bit")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from rlhf_lab.algos.ppo import new_state, ppo_step
    from rlhf_lab.config import ModelConfig, PPOConfig
    from rlhf_lab.data.prompts import sample_prompts
    from rlhf_lab.generation.chat import encode_prompts
    from rlhf_lab.generation.decode import eos_token_ids
    from rlhf_lab.generation.sampling import choose_decoder, sample
    from rlhf_lab.modeling.adapters import POLICY, load_lab_models
    from rlhf_lab.runtime import model_thread

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def run() -> dict:
        models = load_lab_models(ModelConfig(model=args.model, precision=args.precision, lora_r=16), device=device)
        note = choose_decoder(models)
        cfg = PPOConfig(batch_size=8, max_new_tokens=64, num_ppo_epochs=4, num_mini_batches=2, max_kl=0)  # timing only
        state = new_state(models, cfg)
        with torch.no_grad():
            models.reward_head.weight.normal_(std=0.02)
        prompts = sample_prompts(8, seed=0)
        plain = AutoModelForCausalLM.from_pretrained(models.path, dtype=torch.bfloat16 if device.type == "cuda"
                                                     else torch.float32).to(device).eval()
        ids, mask = encode_prompts(models.tokenizer, prompts, device)
        eos = sorted(eos_token_ids(models.tokenizer, models.model))
        step_times, gen_rates, plain_times, lengths = [], [], [], []
        for i in range(args.steps + 1):
            sync()
            t = time.perf_counter()
            row, _ = ppo_step(models, prompts, cfg, state, seed=i)
            sync()
            step_s = time.perf_counter() - t
            t = time.perf_counter()
            rollout = sample(models, prompts, 64, 1.0, 1.0, seed=i, adapter=POLICY)
            sync()
            gen_s = time.perf_counter() - t
            t = time.perf_counter()
            with torch.no_grad():
                plain.generate(input_ids=ids, attention_mask=mask, do_sample=True, max_new_tokens=64,
                               min_new_tokens=64, suppress_tokens=eos, pad_token_id=models.tokenizer.pad_token_id)
            sync()
            plain_s = time.perf_counter() - t
            if i:  # the first step is the warm-up
                step_times.append(step_s)
                gen_rates.append(float(rollout.response_mask.sum()) / gen_s)
                plain_times.append(plain_s)
                lengths.append(row["val/response_length"])
            print(f"step {i}: {row['time/step_s']:.2f}s (sampling {row['time/generate_s']:.2f}s), "
                  f"mean response {row['val/response_length']:.0f} tokens; transformers generate {plain_s:.2f}s",
                  flush=True)
        out = {"median_step_s": round(median(step_times), 2), "step_s": [round(x, 2) for x in step_times],
               "generate_tokens_per_s": round(median(gen_rates), 1),
               "transformers_generate_s": round(median(plain_times), 2),
               "step_over_transformers_generate": round(median(step_times) / median(plain_times), 2),
               "mean_rollout_tokens": round(sum(lengths) / len(lengths), 1), "lab_path": note,
               "peak_rss_mb": round(peak_rss_mb(), 0), "model": args.model, "precision": args.precision,
               "machine": machine()}
        if device.type == "cuda":
            out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 0)
        return out

    print(json.dumps(model_thread.call(run)))


if __name__ == "__main__":
    main()
