"""Time the standard PPO step: 8 rollouts x 64 new tokens, 4 PPO epochs, SmolLM2-135M nf4, LoRA r=16.

Prints one JSON line: median_step_s (after a warm-up), peak_rss_mb, generate_tokens_per_s (plain generate of
the same batch, for the overhead ratio), and the machine. Usage: python bench/ppo_step.py [--steps N]
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
    args = ap.parse_args()

    import torch

    from rlhf_lab.runtime import model_thread as worker
    from rlhf_lab.config import ModelConfig, PPOConfig
    from rlhf_lab.generation.decode import generate
    from rlhf_lab.modeling.adapters import load_lab_models
    from rlhf_lab.algos.ppo import new_state, ppo_step
    from rlhf_lab.data.prompts import sample_prompts

    def run() -> dict:
        models = load_lab_models(ModelConfig(model=args.model, precision=args.precision, lora_r=16))
        # The standard step: 8 rollouts, exactly 64 new tokens (no early EOS: the reward head is random), 4 epochs.
        cfg = PPOConfig(batch_size=8, max_new_tokens=64, num_ppo_epochs=4, num_mini_batches=2)
        state = new_state(models, cfg)
        with torch.no_grad():
            models.reward_head.weight.normal_(std=0.02)
        prompts = sample_prompts(8, seed=0)
        step_times, gen_rates = [], []
        for i in range(args.steps + 1):
            t = time.perf_counter()
            row, _ = ppo_step(models, prompts, cfg, state, seed=i)
            if i:  # the first step is the warm-up
                step_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            rollout = generate(models.model, models.tokenizer, prompts, 64, 1.0, 1.0, seed=i)
            dt = time.perf_counter() - t
            if i:
                gen_rates.append(float(rollout.response_mask.sum()) / dt)
            print(f"step {i}: {row['time/step_s']:.2f}s (generate {row['time/generate_s']:.2f}s), "
                  f"mean response {row['val/response_length']:.0f} tokens", flush=True)
        return {"median_step_s": round(median(step_times), 2), "step_s": [round(x, 2) for x in step_times],
                "generate_tokens_per_s": round(median(gen_rates), 1), "peak_rss_mb": round(peak_rss_mb(), 0),
                "model": args.model, "precision": args.precision, "machine": machine()}

    print(json.dumps(worker.call(run)))


if __name__ == "__main__":
    main()
