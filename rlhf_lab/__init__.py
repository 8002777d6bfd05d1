"""rlhf_lab: rank a small model's answers, train a reward model on the spot, run short 4-bit PPO updates.

In a notebook: `from rlhf_lab import Lab`. The import is lazy so that `python -m rlhf_lab sessions` and the
data-only modules start without loading torch.
"""
__version__ = "0.1.0"


def __getattr__(name):
    if name == "Lab":
        from .lab import Lab
        return Lab
    raise AttributeError(f"module 'rlhf_lab' has no attribute {name!r}")
