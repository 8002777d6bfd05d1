"""How the lab's prompts and answers become dataset fields: chat messages exactly as the lab renders them.

The lab wraps every prompt in the model's chat template with the session's system message (generation.chat);
the exports carry that system message in each prompt so an engine applying the same template sees the same
tokens. A base model without a chat template gets plain strings, as the lab feeds it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Conversation:
    system: str | None
    """The session's system message (None: the model template's own default)."""
    chat: bool = True
    """False for a model without a chat template: prompts and answers stay plain strings."""

    def messages(self, prompt: str) -> list[dict]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + [{"role": "user", "content": prompt}]

    def prompt(self, prompt: str):
        return self.messages(prompt) if self.chat else prompt

    def answer(self, text: str):
        return [{"role": "assistant", "content": text}] if self.chat else text
