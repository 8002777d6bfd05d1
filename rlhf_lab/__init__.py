"""rlhf_lab: rank a small model's answers, train a reward model on the spot, run short 4-bit PPO updates."""
__version__ = "0.1.0"
