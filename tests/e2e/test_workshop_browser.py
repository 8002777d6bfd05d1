"""Workshop mode in a real browser: a scenario's autopilot fills the rankings table while the cards show the
judge's answers; the run report opens in chromium with the network blocked and draws its plots.

With RLHF_LAB_SCREENSHOTS set to a folder, screenshots are saved there (docs/screenshots/ in the repository).
"""
import dataclasses
import json
import os
from pathlib import Path

import pytest

from tests.apprun import App
from tests.e2e.browser import browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SHOTS = os.environ.get("RLHF_LAB_SCREENSHOTS")


def shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def set_slider(page, label, value):
    box = page.locator(f"input[aria-label='number input for {label}']")
    box.fill(str(value))
    box.press("Enter")


def test_scenario_autopilot_fills_the_rankings_table(tmp_path):
    app = App(tmp_path, session="workshop")
    try:
        app.wait_ready()
        with browser_page() as context:
            page = context.new_page()
            page.goto(app.url)
            page.locator("#lab-prompt textarea").wait_for()
            page.get_by_text("Autopilot: a judge ranks for you").click()
            page.locator("#lab-scenario-cheerful").click()
            page.locator("#lab-scenario-goal").filter(has_text="Make it cheerful").wait_for(timeout=10_000)
            assert page.locator("#lab-judge input").input_value() == "enthusiastic"
            # Small sizes keep it cheap on the real model: 3 prompts x 2 answers of at most 24 tokens.
            set_slider(page, "prompts to rank", 3)
            set_slider(page, "K (answers per prompt)", 2)
            set_slider(page, "max_new_tokens", 24)
            page.locator("#lab-run-autopilot").click()
            page.locator("#lab-autopilot-status").filter(has_text="Autopilot started").wait_for(timeout=10_000)
            page.locator("#lab-autopilot-progress").filter(has_text="autopilot finished").wait_for(timeout=300_000)
            page.locator("#lab-counters").filter(has_text="3 rankings").wait_for(timeout=10_000)
            table = page.locator("#lab-rankings")
            table.filter(has_text="judge:enthusiastic").wait_for(timeout=10_000)
            assert table.inner_text().count("judge:enthusiastic") == 3
            labels = page.locator(".lab-card").filter(has_text="judge").count()
            assert labels >= 2  # the cards show the judge's last answers with its scores
            page.locator("#lab-story").filter(has_text="The judge “enthusiastic” ranked answers to 3 prompts"
                                              ).wait_for(timeout=10_000)
            page.locator("#lab-large-text input").check()
            assert page.evaluate("document.body.classList.contains('lab-large')")
            shot(page, "autopilot")

            # The Session tab hands out the run report as one file.
            page.get_by_role("tab", name="Session").click()
            page.locator("#lab-report").click()
            link = page.locator("#lab-report-file a").first
            link.wait_for(timeout=30_000)
            body = page.request.get(link.get_attribute("href")).text()
            assert "rlhf_lab run report: session workshop" in body and "<td class=''>cheerful</td>" in body
            assert "The judge “enthusiastic” ranked answers to 3 prompts" in body
        records = [json.loads(x) for x in (tmp_path / "workshop" / "rankings.jsonl").read_text().splitlines()]
        assert len(records) == 3 and {r["annotator"] for r in records} == {"judge:enthusiastic"}
        assert json.loads((tmp_path / "workshop" / "session.json").read_text())["scenario"] == "cheerful"
    finally:
        app.stop()


def longer(prompt, completion):
    return float(len(completion))


def test_report_opens_offline_and_draws_its_plots(tiny_model_dir, tiny_models, tmp_path, monkeypatch):
    from rlhf_lab import judges, scenarios
    from rlhf_lab.config import ModelConfig
    from rlhf_lab.lab import Lab

    monkeypatch.setitem(judges.BUILTIN, "longer", longer)
    small = dataclasses.replace(scenarios.get("concise"), judge="longer", n_prompts=6, k=3, max_new_tokens=8,
                                reward_seconds=30, algorithm="ppo", ppo_steps=3, eval_prompts=3)
    monkeypatch.setattr(scenarios, "SCENARIOS", (small,))
    lab = Lab(tmp_path / "sessions", model_cfg=ModelConfig(model=str(tiny_model_dir), precision="fp32", lora_r=4))
    lab.models, lab.model_cfg = tiny_models, lab.default_model_cfg
    lab.open_session("report", create=True)
    list(lab.run_scenario("concise"))
    path = lab.session.root / "evaluations.jsonl"
    last = json.loads(path.read_text().splitlines()[-1])
    last["examples"][0]["policy"] = "<script>window.__xss=1</script><img src=x onerror='window.__xss=2'>"
    with open(path, "a") as f:
        f.write(json.dumps(last) + "\n")
    out = tmp_path / "report.html"
    lab.report(out)

    requests = []
    with browser_page() as context:
        def block(route):
            requests.append(route.request.url)
            route.abort()
        context.route("http*://**/*", block)
        page = context.new_page()
        page.goto(out.as_uri())
        page.locator(".plotly-graph-div .main-svg").first.wait_for(timeout=30_000)
        assert page.locator(".plotly-graph-div").count() == 2
        assert page.locator(".plotly-graph-div .scatterlayer .trace path.point").count() >= 6
        assert page.get_by_text("window.__xss=1").count() == 1  # shown as text
        page.wait_for_timeout(500)
        assert page.evaluate("window.__xss") is None
        shot(page, "report")
    assert requests == []  # nothing asked the network
