"""Where an exported reward model reads its score: the same token as the lab, in every engine.

A reward model with the "last" read-out (the only one exported) reads the reward on the last real token of
chat prompt + answer + EOS (generation.chat.tokenize_pairs, modeling.readout). A transformers
`*ForSequenceClassification` reads it on the rightmost token that is not the pad token, so:
- the pad token must differ from EOS (SmolLM2 pads with its EOS, which would move the read-out one token back
  to the answer's last word): an unused special token of the vocabulary becomes the pad token, or, when there
  is none, a new one is added;
- engines that re-render a conversation through the reward model's chat template (TRL's RewardTrainer and
  GRPO, veRL's reward loop) must end it at that EOS: ChatML-style templates add a newline after every
  end-of-turn, so the reward model's template drops what follows the last answer's EOS.
"""
from __future__ import annotations

import json

from ..generation.chat import chat_text, tokenize_pairs
from .conversation import Conversation

NEW_PAD = "<|pad|>"
PROBE_PROMPT, PROBE_ANSWER = "Probe question?", "Probe answer."


def _eos_ids(tokenizer, generation_eos) -> set[int]:
    ids = {tokenizer.eos_token_id} | set(generation_eos if isinstance(generation_eos, (list, tuple)) else
                                          [generation_eos])
    return {int(i) for i in ids if i is not None}


def pad_token_for(tokenizer, conv: Conversation, generation_eos=None) -> tuple[str, bool]:
    """(pad token, whether it must be added to the vocabulary): the tokenizer's own pad if it is not an EOS,
    else an unused special token (one named "pad" first), else NEW_PAD."""
    eos = _eos_ids(tokenizer, generation_eos)
    if tokenizer.pad_token is not None and tokenizer.pad_token_id not in eos:
        return tokenizer.pad_token, False
    used = eos | {tokenizer.bos_token_id}
    if getattr(tokenizer, "chat_template", None) and conv.chat:
        sample = chat_text(_with_system(tokenizer, conv), PROBE_PROMPT) + PROBE_ANSWER + (tokenizer.eos_token or "")
        used |= set(tokenizer(sample, add_special_tokens=False)["input_ids"])
    spare = [(i, t.content) for i, t in sorted(tokenizer.added_tokens_decoder.items())
             if t.special and i not in used]
    spare.sort(key=lambda item: "pad" not in item[1].lower())  # stable: a token named pad first, then by id
    return (spare[0][1], False) if spare else (NEW_PAD, True)


def _with_system(tokenizer, conv: Conversation):
    tokenizer.lab_system_prompt = conv.system  # what chat_text reads: the lab's own rendering
    return tokenizer


def reward_template(tokenizer, conv: Conversation) -> tuple[str | None, str | None]:
    """(chat template for the reward model, warning or None).

    The model's template, wrapped so that a conversation ending in an assistant answer ends at that answer's
    EOS, when the template renders [prompt, answer] as the lab's text plus a suffix (ChatML's newline). The
    prompt alone (add_generation_prompt) renders exactly as before.
    """
    template = getattr(tokenizer, "chat_template", None)
    if not template or not conv.chat or not isinstance(template, str):
        return template, None
    _with_system(tokenizer, conv)
    lab = chat_text(tokenizer, PROBE_PROMPT) + PROBE_ANSWER + (tokenizer.eos_token or "")
    full = _render(tokenizer, template, conv, PROBE_PROMPT, PROBE_ANSWER)
    if full == lab:
        return template, None
    suffix = full[len(lab):]
    wrapped = ("{%- set lab_rendered %}" + template + "{% endset -%}"
               "{%- if not add_generation_prompt and messages and messages[-1]['role'] == 'assistant' and "
               f"lab_rendered.endswith({json.dumps(suffix)}) -%}}{{{{ lab_rendered[:{-len(suffix)}] }}}}"
               "{%- else -%}{{ lab_rendered }}{%- endif -%}")
    if full.startswith(lab) and suffix and _render(tokenizer, wrapped, conv, PROBE_PROMPT, PROBE_ANSWER) == lab:
        return wrapped, None
    return template, ("the model's chat template renders an answer differently from the lab (not as the lab's "
                      "text plus a suffix), so engines that re-render conversations may read the reward at "
                      "another token than the lab did")


def _render(tokenizer, template: str, conv: Conversation, prompt: str, answer: str) -> str:
    return tokenizer.apply_chat_template(conv.messages(prompt) + conv.answer(answer), chat_template=template,
                                         tokenize=False)


def read_position_mismatches(tokenizer, conv: Conversation, rows: list[tuple[str, str]]) -> int:
    """How many (prompt, answer) rows the tokenizer's own chat template tokenizes differently from the lab's
    reward input, or with the pad token inside: 0 means an engine reads the reward where the lab did."""
    _with_system(tokenizer, conv)
    bad = 0
    for prompt, answer in rows:
        ids, _ = tokenize_pairs(tokenizer, [prompt], [answer], "cpu")
        lab = ids[0].tolist()
        if conv.chat and getattr(tokenizer, "chat_template", None):
            engine = tokenizer.apply_chat_template(conv.messages(prompt) + conv.answer(answer), tokenize=True,
                                                   return_dict=True)["input_ids"]
        else:
            engine = lab
        bad += engine != lab or tokenizer.pad_token_id in lab
    return bad


def clear_unused_bos(tokenizer, conv: Conversation) -> bool:
    """Unset a BOS token that the tokenizer never adds but that opens every rendered conversation (SmolLM2's BOS
    is `<|im_start|>`): veRL's reward loop strips a leading BOS from the text it scores, which would cut the
    conversation's first token. Returns whether it was unset; the rendering is unchanged."""
    bos, template = tokenizer.bos_token, getattr(tokenizer, "chat_template", None)
    if not bos or not isinstance(template, str) or "bos_token" in template or not conv.chat:
        return False
    added = tokenizer("x", add_special_tokens=True)["input_ids"][:1] == [tokenizer.bos_token_id]
    rendered = tokenizer.apply_chat_template(conv.messages(PROBE_PROMPT) + conv.answer(PROBE_ANSWER), tokenize=False)
    if added or not rendered.startswith(bos):
        return False
    tokenizer.bos_token = None
    return True
