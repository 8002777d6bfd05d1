"""The UI builds without launching, and shows model text as plain text."""
import gradio as gr

from rlhf_lab.lab import Lab
from rlhf_lab.ui import HEAD, build_ui


def test_ui_builds_with_tabs_shortcuts_and_text_cards(tmp_path):
    demo = build_ui(Lab(tmp_path))
    assert isinstance(demo, gr.Blocks)
    ids = {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    for wanted in ("lab-generate", "lab-random", "lab-save", "lab-allbad", "lab-skip", "lab-undo", "lab-order",
                   "lab-train-rm", "lab-stop-rm", "lab-run-ppo", "lab-stop-ppo", "lab-ppo-plot", "lab-rm-plot"):
        assert wanted in ids, wanted
    cards = [b for b in demo.blocks.values() if "lab-card" in (getattr(b, "elem_classes", None) or [])]
    assert len(cards) == 16
    assert all(isinstance(c, gr.Textbox) and c.interactive is False for c in cards)  # text, never HTML
    labels = {getattr(b, "value", None) for b in demo.blocks.values() if isinstance(b, gr.Button)}
    assert {"Generate (Alt+G)", "All bad (Alt+B)", "Skip (Alt+S)", "Undo last (Alt+Z)"} <= labels
    for key in ("g:", "b:", "s:", "z:", "r:"):
        assert key.replace(":", ": ") in HEAD or key in HEAD
