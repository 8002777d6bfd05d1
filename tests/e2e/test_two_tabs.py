"""Two people, one server: both tabs rank; a Generate while training runs is refused with a message."""
import json

import pytest

from tests.apprun import App
from tests.e2e.browser import browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_two_tabs_rank_and_generate_is_refused_during_training(tmp_path):
    app = App(tmp_path, session="shared")
    try:
        app.wait_ready()
        with browser_page() as context:
            a, b = context.new_page(), context.new_page()
            for page in (a, b):
                page.goto(app.url)
                page.locator("#lab-prompt textarea").wait_for()
            for page, prompt in ((a, "first person"), (b, "second person")):
                page.locator("#lab-prompt textarea").fill(prompt)
                page.locator("#lab-generate").click()
                page.locator("#lab-rank-status").filter(has_text="Rank them").wait_for(timeout=60_000)
            for page, order in ((a, "1>2>3>4"), (b, "4>3>2>1")):
                page.locator("#lab-order textarea, #lab-order input").first.fill(order)
                page.locator("#lab-save").click()
                page.locator("#lab-rank-status").filter(has_text="Saved ranking").wait_for(timeout=30_000)
            lines = (tmp_path / "shared" / "rankings.jsonl").read_text().splitlines()
            assert sorted(json.loads(x)["prompt"] for x in lines) == ["first person", "second person"]

            # Training on the embedded model takes several seconds: ask for a Generate from the other tab meanwhile.
            a.get_by_role("tab", name="Reward Model").click()
            a.locator("#lab-train-rm").click()
            b.locator("#lab-prompt textarea").fill("while training")
            b.locator("#lab-generate").click()
            status = b.locator("#lab-rank-status")
            status.filter(has_text="is running").wait_for(timeout=30_000)
            assert "train reward model" in status.inner_text()
            a.locator("#lab-rm-result").filter(has_text="Held-out accuracy").wait_for(timeout=180_000)
        for line in (tmp_path / "shared" / "rankings.jsonl").read_text().splitlines():
            json.loads(line)  # nothing corrupted
    finally:
        app.stop()
