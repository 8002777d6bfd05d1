"""A fresh policy adapter starts from its seed, not from wherever the global generator stood when the model
loaded: PPO, DPO and SFT from the base start the same way in a long-lived process as in a new one."""
import math

import torch

from cli_config import config_from_cli
from rlhf_lab.cli.parser import build_parser
from rlhf_lab.config import PPOConfig
from rlhf_lab.modeling.adapters import POLICY
from rlhf_lab.runtime import model_thread


def test_reset_policy_draws_a_from_its_seed_and_equals_the_base(tiny_models):
    m = tiny_models

    def lora(kind):
        return [p.detach().clone() for p in m.lora_params(POLICY, kind)]

    def resets():
        saved = m.snapshot(POLICY)
        try:
            before = torch.get_rng_state()
            m.reset_policy()
            untouched = torch.equal(before, torch.get_rng_state())
            first = lora("lora_A")
            torch.rand(99)  # what sampling or loading another model would have drawn
            m.reset_policy()
            same = all(torch.equal(a, b) for a, b in zip(first, lora("lora_A")))
            m.reset_policy(seed=1)
            other = not any(torch.equal(a, b) for a, b in zip(first, lora("lora_A")))
            m.reset_policy()
            b_zero = all(not b.any() for b in lora("lora_B"))
            head_zero = not m.value_head.weight.any() and not m.value_head.bias.any()
            # peft's own initialisation: Kaiming-uniform with a=sqrt(5) is uniform on +-1/sqrt(fan_in)
            bounds = [(a.abs().max().item(), 1 / math.sqrt(a.shape[1])) for a in lora("lora_A")]
            return untouched, same, other, b_zero, head_zero, bounds
        finally:
            m.restore(POLICY, saved)

    untouched, same, other, b_zero, head_zero, bounds = model_thread.call(resets)
    assert (untouched, same, other, b_zero, head_zero) == (True, True, True, True, True)
    assert bounds and all(0.5 * bound < biggest <= bound for biggest, bound in bounds), bounds


def test_ppo_takes_its_seed_and_kl_controller_on_the_command_line(monkeypatch):
    cfg = config_from_cli(monkeypatch, ["ppo", "--session", "s", "--seed", "3", "--kl-horizon", "16",
                                        "--learning-rate", "1.5e-4", "--max-kl", "6"],
                          {"summary": True, "steps": 0, "stopped": False, "seconds": 0.0})
    assert (cfg.seed, cfg.kl_horizon, cfg.learning_rate, cfg.max_kl) == (3, 16, 1.5e-4, 6.0)
    defaults = build_parser().parse_args(["ppo", "--session", "s"])
    assert (defaults.seed, defaults.kl_horizon, defaults.learning_rate, defaults.max_kl) == (
        PPOConfig().seed, PPOConfig().kl_horizon, PPOConfig().learning_rate, PPOConfig().max_kl)
