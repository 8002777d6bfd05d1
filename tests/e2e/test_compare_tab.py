"""The Compare tab in a real browser: draw blind matches, vote with the keyboard, see the reveal and the
leaderboard update, undo; a markup prompt renders as text. The app runs a tiny random llama (the mechanics
are under test, not the model) over a session prepared with a saved policy version v001."""
import json
import os
import re
from pathlib import Path

import pytest
import torch

from tests.apprun import App
from tests.e2e.browser import browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHOTS = os.environ.get("RLHF_LAB_SCREENSHOTS")
XSS = '<img src=x onerror="window.__xss=1"> **bold** <script>window.__xss=2</script>'


def prepare_session(sessions_dir, tiny_model_dir):
    """Session "cmp" on the tiny model with v001 (a perturbed policy adapter) saved and current."""
    from rlhf_lab.config import ModelConfig
    from rlhf_lab.lab import Lab
    from rlhf_lab.modeling import checkpoints
    from rlhf_lab.modeling.adapters import POLICY
    from rlhf_lab.runtime import model_thread

    lab = Lab(sessions_dir, model_cfg=ModelConfig(model=str(tiny_model_dir), precision="fp32", lora_r=4))
    lab.open_session("cmp", create=True)

    def perturb_and_save():
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in lab.models.lora_params(POLICY, "lora_B"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        checkpoints.save_adapter(lab.models, POLICY, lab.session.adapter_dir("policy") / "v001", {"algorithm": "test"})

    model_thread.call(perturb_and_save)
    lab.session.update_meta(policy_version="v001", round=1)


def votes_on_disk(sessions_dir):
    path = sessions_dir / "cmp" / "votes.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def draw(page, prompt=""):
    page.locator("#lab-arena-prompt textarea").fill(prompt)
    page.keyboard.press("Alt+n")
    page.locator("#lab-arena-status").filter(has_text="Which answer is better").wait_for(timeout=60_000)
    return (page.locator("#lab-arena-a textarea").input_value(), page.locator("#lab-arena-b textarea").input_value())


def vote(page, key):
    page.keyboard.press(f"Alt+{key}")
    page.locator("#lab-arena-status").filter(has_text="Saved").wait_for(timeout=30_000)
    return page.locator("#lab-arena-status").inner_text()


def test_vote_in_compare_tab_and_leaderboard_updates(tmp_path, tiny_model_dir):
    prepare_session(tmp_path, tiny_model_dir)
    app = App(tmp_path, session="cmp", extra_args=["--model", str(tiny_model_dir), "--precision", "fp32"])
    try:
        app.wait_ready()
        with browser_page() as context:
            page = context.new_page()
            page.goto(app.url)
            page.get_by_role("tab", name="Compare").click()
            board = page.locator("#lab-arena-board")
            assert "v001" not in board.inner_text()  # no votes yet

            a, b = draw(page)
            reveal = vote(page, "a")
            assert re.search(r"A was (base|v001), B was (base|v001)", reveal), reveal
            first, second = re.search(r"A was (\w+), B was (\w+)", reveal).groups()
            assert {first, second} == {"base", "v001"}
            assert f"A · {first}" in page.locator("#lab-arena-a").inner_text()
            [rec] = votes_on_disk(tmp_path)  # on disk when the page said saved
            assert rec["verdict"] == "A" and rec["a"]["version"] == first and rec["annotator"] == "human"
            # A textarea's value has its line breaks normalised (CR LF and CR become LF), as HTML specifies.
            def lf(text):
                return text.replace("\r\n", "\n").replace("\r", "\n")
            assert lf(rec["a"]["text"]) == lf(a) and lf(rec["b"]["text"]) == lf(b)
            page.locator("#lab-arena-advice").filter(has_text="1 vote (all)").wait_for(timeout=10_000)
            text = board.inner_text()
            assert "base" in text and "v001" in text and "1000" in text
            assert "0.00 (1)" in page.locator("#lab-arena-winrate").inner_text() or \
                "1.00 (1)" in page.locator("#lab-arena-winrate").inner_text()

            # Alt+B votes B here: the ranking tab's "All bad" (also Alt+B) is hidden and must not fire.
            draw(page)
            vote(page, "b")
            page.locator("#lab-arena-advice").filter(has_text="2 votes (all)").wait_for(timeout=10_000)
            assert [v["verdict"] for v in votes_on_disk(tmp_path)] == ["A", "B"]
            assert not (tmp_path / "cmp" / "rankings.jsonl").exists()

            # A tie and a both-bad vote by click, then undo the last with Alt+Z.
            draw(page)
            page.locator("#lab-vote-tie").click()
            page.locator("#lab-arena-status").filter(has_text="Saved: a tie").wait_for(timeout=30_000)
            page.locator("#lab-arena-advice").filter(has_text="3 votes (all)").wait_for(timeout=10_000)
            page.keyboard.press("Alt+z")
            page.locator("#lab-arena-status").filter(has_text="Undone").wait_for(timeout=30_000)
            page.locator("#lab-arena-advice").filter(has_text="2 votes (all)").wait_for(timeout=10_000)
            lines = votes_on_disk(tmp_path)
            assert len(lines) == 4 and lines[-1]["retracts"] == lines[-2]["id"]  # undo is a new line

            # Voting twice on one match is refused and changes nothing.
            page.locator("#lab-vote-a").click()
            page.locator("#lab-arena-status").filter(has_text="Draw a match first").wait_for(timeout=10_000)
            assert len(votes_on_disk(tmp_path)) == 4

            # A prompt full of markup is shown as text, and nothing in it runs.
            draw(page, XSS)
            status = page.locator("#lab-arena-status").inner_text()
            assert "**bold**" in status and "<script>" in status
            page.wait_for_timeout(1000)
            assert page.evaluate("window.__xss") is None

            # A reload brings the open match back.
            shown = (page.locator("#lab-arena-a textarea").input_value(),
                     page.locator("#lab-arena-b textarea").input_value())
            page.reload()
            page.get_by_role("tab", name="Compare").click()
            page.locator("#lab-arena-status").filter(has_text="Which answer is better").wait_for(timeout=30_000)
            assert (page.locator("#lab-arena-a textarea").input_value(),
                    page.locator("#lab-arena-b textarea").input_value()) == shown
            vote(page, "x")
            page.locator("#lab-arena-advice").filter(has_text="3 votes (all)").wait_for(timeout=10_000)
            if SHOTS:
                Path(SHOTS).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(Path(SHOTS) / "compare.png"), full_page=True)
        meta = json.loads((tmp_path / "cmp" / "session.json").read_text())
        assert meta["policy_version"] == "v001"
    finally:
        app.stop()
