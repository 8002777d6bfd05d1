"""Shared pieces of the frozen configs: range checks and reading configs back from session.json."""
from __future__ import annotations

from dataclasses import fields

from ..errors import ConfigError

MAX_K = 16
MAX_NEW_TOKENS_LIMIT = 1024


def check_range(name: str, value, low, high, why: str = "") -> None:
    """Raise ConfigError unless low <= value <= high."""
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}{why}")


def from_dict(cls, data: dict | None):
    """Build a config from a (possibly older) dict, ignoring keys this version does not know."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in (data or {}).items() if k in known})
