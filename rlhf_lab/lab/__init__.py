"""The Lab facade and one module per workflow (sessions, annotate, reward, ppo, evaluate)."""
from .facade import DEFAULT_SESSIONS, Lab

__all__ = ["Lab", "DEFAULT_SESSIONS"]
