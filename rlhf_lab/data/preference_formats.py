"""The preference-pair line formats the lab reads and writes, each turned into (prompt, chosen, rejected).

- plain TRL / OpenRLHF: {"prompt": str, "chosen": str, "rejected": str}
- conversational TRL: "prompt" a list of messages (an optional system message, then one user message),
  "chosen" / "rejected" one assistant message each; or, without "prompt", whole conversations that share
  everything but their last (assistant) message (TRL's "implicit prompt")
- HH-RLHF: {"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", "rejected": "..."} with one Human turn

The lab ranks answers to one prompt, so multi-turn conversations are refused with a message saying so.
A system message is not imported: the session's own system prompt applies to every pair it holds.
"""
from __future__ import annotations

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"

Parsed = tuple[str, str, str]


def hh_text(prompt: str, answer: str) -> str:
    """One single-turn HH-RLHF conversation (Anthropic's text format)."""
    return f"{HUMAN} {prompt}{ASSISTANT} {answer}"


def hh_representable(*texts: str) -> bool:
    """False when a text holds a turn marker, which would make its HH-RLHF form read back differently."""
    return not any(HUMAN in t or ASSISTANT in t for t in texts)


def _unspaced(text: str) -> str:
    """The text after a turn marker without the one space hh_text puts there."""
    return text[1:] if text.startswith(" ") else text


def split_hh(text: str) -> tuple[str, str] | str:
    """(prompt, answer) of a single-turn HH-RLHF text, or why it is not one."""
    if not text.startswith(HUMAN):
        return "does not start with '\\n\\nHuman:'"
    humans, assistants = text.count(HUMAN), text.count(ASSISTANT)
    if humans != 1 or assistants != 1:
        return (f"is a multi-turn HH-RLHF conversation ({humans} Human and {assistants} Assistant turns); the lab "
                "imports single-turn ones only (keep the lines with one Human turn)")
    human, answer = text.split(ASSISTANT)
    return _unspaced(human[len(HUMAN):]), _unspaced(answer)


def _message_text(message, role: str) -> str | None:
    if isinstance(message, dict) and message.get("role") == role and isinstance(message.get("content"), str):
        return message["content"]
    return None


def _prompt_of(messages) -> str | None:
    """The user text of [user] or [system, user]; None for anything else (multi-turn, images, tools)."""
    if not isinstance(messages, list) or not messages:
        return None
    if _message_text(messages[0], "system") is not None:
        messages = messages[1:]
    return _message_text(messages[0], "user") if len(messages) == 1 else None


def _answer_of(messages) -> str | None:
    if isinstance(messages, list) and len(messages) == 1:
        return _message_text(messages[0], "assistant")
    return None


CONVERSATION_HELP = ("a conversational line needs \"prompt\" as [system?, user] messages and \"chosen\" / "
                     "\"rejected\" as one assistant message each, all with text content (multi-turn "
                     "conversations cannot be imported)")


def _conversational(row: dict) -> Parsed | str:
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if "prompt" not in row and isinstance(chosen, list) and isinstance(rejected, list) and chosen and rejected:
        if chosen[:-1] != rejected[:-1]:
            return "has chosen and rejected conversations that differ before their last message"
        prompt, chosen, rejected = chosen[:-1], chosen[-1:], rejected[-1:]
    else:
        prompt = row.get("prompt")
    parsed = (_prompt_of(prompt), _answer_of(chosen), _answer_of(rejected))
    return CONVERSATION_HELP if None in parsed else parsed


def _hh_pair(chosen: str, rejected: str) -> Parsed | str:
    a, b = split_hh(chosen), split_hh(rejected)
    for name, part in (("chosen", a), ("rejected", b)):
        if isinstance(part, str):
            return f"has no prompt, and its {name} text {part}"
    if a[0] != b[0]:
        return "is an HH-RLHF pair whose chosen and rejected texts have different Human turns"
    return a[0], a[1], b[1]


def parse_row(row) -> Parsed | str:
    """(prompt, chosen, rejected) of one decoded JSON line in any of the formats above, or why it is unusable."""
    if not isinstance(row, dict) or not all(k in row for k in ("chosen", "rejected")):
        return "is not a JSON object with chosen and rejected (and prompt) fields"
    chosen, rejected = row["chosen"], row["rejected"]
    if isinstance(chosen, list) or isinstance(row.get("prompt"), list):
        parsed = _conversational(row)
    elif not all(isinstance(x, str) for x in (row.get("prompt", ""), chosen, rejected)):
        return "is not a JSON object with prompt, chosen and rejected strings"
    elif "prompt" in row:
        parsed = (row["prompt"], chosen, rejected)
    else:
        parsed = _hh_pair(chosen, rejected)
    if isinstance(parsed, str):
        return parsed
    if not parsed[0].strip():
        return "has an empty prompt"
    for key, text in zip(("prompt", "chosen", "rejected"), parsed):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return f"has a lone surrogate in {key!r} (text UTF-8 cannot store)"
    return parsed
