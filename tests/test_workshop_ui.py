"""The workshop widgets build without launching: scenario buttons, autopilot controls, story, report button."""
import gradio as gr

from rlhf_lab import scenarios
from rlhf_lab.lab import Lab
from rlhf_lab.ui import CSS, build_ui
from rlhf_lab.ui import autopilot_panel, story_panel


def test_workshop_widgets_are_there(tmp_path):
    demo = build_ui(Lab(tmp_path))
    ids = {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    wanted = {"lab-run-autopilot", "lab-stop-autopilot", "lab-autopilot-progress", "lab-judge", "lab-story",
              "lab-large-text", "lab-report", "lab-report-file"} | {f"lab-scenario-{n}" for n in scenarios.names()}
    assert wanted <= ids, wanted - ids
    titles = {b.value for b in demo.blocks.values() if isinstance(b, gr.Button)}
    assert {"Make it concise", "Make it cheerful", "No bullet lists", "Mention the user"} <= titles
    assert "body.lab-large .lab-story" in CSS and "lab-large" in story_panel.LARGE_JS


def test_story_text_escapes_and_says_when_no_session(tmp_path):
    lab = Lab(tmp_path)
    assert story_panel.story_text(lab).startswith("Open or create a session")
    lab.story = lambda: ["The judge “<b>x</b>” ranked answers to 2 prompts: 3 pairs."]
    assert story_panel.story_text(lab) == "- The judge “&lt;b&gt;x&lt;/b&gt;” ranked answers to 2 prompts: 3 pairs."


def test_cards_show_the_judges_scores_and_pick():
    row = {"texts": ["short", "a longer one"], "scores": [5.0, 12.0], "ranking": [[1], [0]],
           "truncated": [False, True]}
    updates = autopilot_panel.card_updates(row)
    assert len(updates) == 2 * 16
    assert updates[0]["value"] == "short" and updates[0]["label"] == "Card 1 · judge 5"
    assert updates[1]["label"].startswith("Card 2 · judge 12 · judge's pick · ✂")
    assert updates[2]["value"] == "" and [u["visible"] for u in updates[16:19]] == [True, True, False]
    assert all(u == gr.update() for u in autopilot_panel.card_updates(None))
