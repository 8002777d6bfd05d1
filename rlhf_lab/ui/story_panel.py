"""The story panel above the tabs: this session's numbers in plain words, redrawn when a job ends, with a
large-text switch for a projector."""
from __future__ import annotations

import html

import gradio as gr

# The switch sets a class on <body>; CSS in ui/__init__.py enlarges the story, the cards and the tables.
LARGE_JS = "(on) => { document.body.classList.toggle('lab-large', on); }"


def story_text(lab) -> str:
    lines = lab.story()
    if not lines:
        return "Open or create a session to see its story here."
    return "\n".join(f"- {html.escape(line, quote=False)}" for line in lines)


def build(lab) -> dict:
    with gr.Row(equal_height=False):
        story = gr.Markdown(story_text(lab), elem_id="lab-story", elem_classes=["lab-story"])
        large = gr.Checkbox(False, label="Large text (projector)", elem_id="lab-large-text", scale=0,
                            min_width=190)
    large.change(None, [large], None, js=LARGE_JS)
    return {"story": story, "refresh": lambda: story_text(lab)}
