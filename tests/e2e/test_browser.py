"""The whole loop in a real browser: generate, rank with the keyboard, train the reward model, run 2 PPO
steps, see reward and KL plotted, reload and find the same state; model and prompt text render as text."""
import json
import re

import pytest

from tests.apprun import App
from tests.e2e.browser import browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def rankings_on_disk(sessions_dir, name="e2e"):
    path = sessions_dir / name / "rankings.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def generate_and_rank(page, prompt, order):
    page.locator("#lab-prompt textarea").fill(prompt)
    page.keyboard.press("Alt+g")
    page.locator("#lab-rank-status").filter(has_text="Rank them").wait_for(timeout=120_000)
    cards = [page.locator(".lab-card textarea").nth(i).input_value() for i in range(4)]
    assert sum(bool(c.strip()) for c in cards) >= 2
    page.keyboard.press("Alt+o")
    page.keyboard.type(order)
    page.keyboard.press("Enter")
    page.locator("#lab-rank-status").filter(has_text="Saved ranking").wait_for(timeout=30_000)


def test_whole_loop_in_browser(tmp_path):
    app = App(tmp_path)
    try:
        app.wait_ready()
        with browser_page() as context:
            page = context.new_page()
            page.goto(app.url)
            page.get_by_text("rlhf_lab").first.wait_for()

            generate_and_rank(page, "How do bees make honey?", "2>1=3>4")
            assert "1 rankings" in page.locator("#lab-counters").inner_text()
            assert len(rankings_on_disk(tmp_path)) == 1  # on disk when the page said saved
            generate_and_rank(page, XSS, "1>2>3>4")
            counters = page.locator("#lab-counters").inner_text()
            assert "2 rankings" in counters and re.search(r"\d+ pairs", counters)
            records = rankings_on_disk(tmp_path)
            assert records[0]["ranking"] == [[1], [0, 2], [3]] and records[1]["prompt"] == XSS

            # The XSS prompt shows up in the rankings table as text and nothing ran.
            assert page.get_by_text("window.__xss=2").count() >= 1
            assert page.evaluate("window.__xss") is None

            page.get_by_role("tab", name="Reward Model").click()
            page.locator("#lab-train-rm").click()
            page.locator("#lab-rm-result").filter(has_text="Held-out accuracy").wait_for(timeout=180_000)
            page.locator("#lab-rm-plot .scatterlayer .trace").first.wait_for(timeout=30_000)

            page.get_by_role("tab", name="PPO").click()
            number = page.locator("input[aria-label='number input for steps']")
            number.fill("2")
            number.press("Enter")
            page.locator("#lab-run-ppo").click()
            page.locator("#lab-ppo-progress").filter(has_text="PPO finished").wait_for(timeout=300_000)
            points = page.locator("#lab-ppo-plot .scatterlayer .trace path.point")
            points.first.wait_for(timeout=30_000)
            assert points.count() >= 2 * 2  # at least reward and KL, two steps each

            # A completion carrying markup, recorded through the API, shows up in the table after a reload.
            from gradio_client import Client
            Client(app.url, verbose=False).predict("markup test", [XSS, "plain"], "1>2", "ranked", api_name="/rank")
            page.reload()
            page.get_by_text("rlhf_lab").first.wait_for()
            page.locator("#lab-counters").filter(has_text="3 rankings").wait_for(timeout=30_000)
            assert page.get_by_text("window.__xss=2").count() >= 2  # the prompt and the completion, as text
            counters = page.locator("#lab-counters").inner_text()
            assert "policy v001" in counters and "round 1" in counters
            page.wait_for_timeout(1500)  # give any injected handler the chance to fire
            assert page.evaluate("window.__xss") is None
        meta = json.loads((tmp_path / "e2e" / "session.json").read_text())
        assert meta["policy_version"] == "v001" and meta["round"] == 1
    finally:
        app.stop()
