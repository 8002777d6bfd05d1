"""Under the ranking cards: write (or edit) the answer you wanted. It is saved as a demonstration (SFT data)
and as preferred over every answer the card showed."""
from __future__ import annotations

import gradio as gr

from ..config import MAX_K
from ..errors import LabError
from .common import err, ok


def shown_cards(lab, state: dict, prompt: str) -> tuple[str, list[str], list[bool], str | None]:
    """(prompt, answers shown, their cut flags, ranking id) the demonstration answers: the cards on screen if
    they are not ranked yet, else the newest ranking of the prompt in the box (ranked, all bad or skipped)."""
    if state and state.get("texts"):
        return state["prompt"], list(state["texts"]), list(state.get("truncated") or []), None
    prompt = (prompt or "").strip()
    for rec in reversed(lab.rankings() if lab.session else []):
        if rec["prompt"] == prompt:
            return prompt, rec["completions"], rec.get("truncated") or [], rec["id"]
    return prompt, [], [], None


def build(lab, current: gr.State, prompt_box: gr.Textbox) -> None:
    with gr.Accordion("Write the answer you wanted", open=False):
        gr.Markdown("Saved as a demonstration for SFT, and as better than every card shown (for the reward model "
                    "and DPO). After saving a ranking (or 'all bad') it answers that ranking's cards.")
        with gr.Row():
            start = gr.Dropdown([str(i) for i in range(1, MAX_K + 1)], label="start from card", scale=1,
                                elem_id="lab-demo-from")
            answer = gr.Textbox(label="The answer you wanted", lines=4, scale=5, elem_id="lab-demo-text")
        save = gr.Button("Save demonstration", elem_id="lab-demo-save")
        status = gr.Markdown(elem_id="lab-demo-status")

    def copy(card, state, text):
        texts = (state or {}).get("texts") or []
        return texts[int(card) - 1] if card and int(card) <= len(texts) else text

    def save_demo(text, state, prompt):
        try:
            prompt, shown, cut, ranking_id = shown_cards(lab, state, prompt)
            rec = lab.demonstrate(prompt, text, shown, cut or None, ranking_id)
        except LabError as e:
            return err(str(e)), gr.update()
        pairs = sum(s.strip() != rec["completion"].strip() for s in shown)
        return ok(f"Saved demonstration {rec['id']}: preferred over {pairs} shown answer(s)."), ""

    start.change(copy, [start, current, answer], [answer])
    save.click(save_demo, [answer, current, prompt_box], [status, answer], api_name="demonstrate")
