"""Autopilot on the ranking tab: a judge ranks N prompts x K answers while the cards, the counters and the
rankings table update; one click applies a workshop scenario (judge, prompts, sizes). Progress and Stop."""
from __future__ import annotations

import random

import gradio as gr

from .. import scenarios
from ..config import MAX_K, GenerationConfig
from ..data.prompts import prompt_set, set_names
from ..errors import LabError
from ..judges import BUILTIN
from .common import err, job_marker, job_view, ok, progress_html

JOB_NAMES = ("autopilot",)
JUDGES_PROMPTS = "the judge's prompts"  # None: simulate takes the judge's scenario set
JUDGES = list(dict.fromkeys([*BUILTIN, *(s.judge for s in scenarios.SCENARIOS)]))


def build(lab) -> dict:
    """The panel's widgets, placed where it is called (inside the ranking tab); `wire` connects them."""
    parts: dict = {}
    with gr.Accordion("Autopilot: a judge ranks for you", open=False, elem_id="lab-autopilot"):
        gr.Markdown("A simulated annotator with one clear taste ranks the answers, so a workshop fills a "
                    "session in minutes. Its rankings are marked `judge:<name>`. A scenario sets everything:")
        with gr.Row():
            parts["scenario_buttons"] = [(s.name, gr.Button(s.title, size="sm", elem_id=f"lab-scenario-{s.name}"))
                                         for s in scenarios.SCENARIOS]
        parts["goal"] = gr.Markdown(elem_id="lab-scenario-goal")
        with gr.Row():
            parts["judge"] = gr.Dropdown(JUDGES, value="concise", allow_custom_value=True, elem_id="lab-judge",
                                         label="judge: built-in, mentions:<word>, or package.module:function")
            parts["source"] = gr.Dropdown([JUDGES_PROMPTS] + set_names(), value=JUDGES_PROMPTS,
                                          label="prompts", elem_id="lab-autopilot-prompts")
            parts["n"] = gr.Slider(1, 200, value=16, step=1, label="prompts to rank", elem_id="lab-autopilot-n")
            parts["k"] = gr.Slider(2, MAX_K, value=GenerationConfig.k, step=1, label="K (answers per prompt)",
                                   elem_id="lab-autopilot-k")
            parts["max_new"] = gr.Slider(8, 512, value=GenerationConfig.max_new_tokens, step=1,
                                         label="max_new_tokens", elem_id="lab-autopilot-max-new")
        with gr.Row():
            parts["run"] = gr.Button("Run autopilot", variant="primary", elem_id="lab-run-autopilot")
            parts["stop"] = gr.Button("Stop", variant="stop", elem_id="lab-stop-autopilot")
        parts["message"] = gr.Markdown(elem_id="lab-autopilot-status")
        parts["progress"] = gr.HTML(job_view(lab, JOB_NAMES)[0], elem_id="lab-autopilot-progress")
        parts["timer"] = gr.Timer(1.0)
        parts["seen"] = gr.State(None)
    return parts


def latest_row(lab) -> dict | None:
    """The newest judged prompt of the current or last autopilot job."""
    job = lab.jobs.current or lab.jobs.last
    if job is None or job.name not in JOB_NAMES:
        return None
    return next((r for r in reversed(job.rows) if "texts" in r), None)


def card_updates(row: dict | None) -> list:
    """Cards then their columns: the judged answers, labelled with the judge's score and place."""
    if row is None:
        return [gr.update()] * (2 * MAX_K)
    texts, best = row["texts"], set(row["ranking"][0]) if row["ranking"] else set()
    cards = []
    for i in range(MAX_K):
        if i >= len(texts):
            cards.append(gr.update(value=""))
            continue
        label = f"Card {i + 1} · judge {row['scores'][i]:g}" + (" · judge's pick" if i in best else "")
        if row["truncated"][i]:
            label += " · ✂ cut off at the length limit (unfinished)"
        cards.append(gr.update(value=texts[i], label=label))
    return cards + [gr.update(visible=i < len(texts)) for i in range(MAX_K)]


def wire(lab, parts: dict, cards: list, columns: list, current, empty: dict, count_md, table, refresh) -> None:
    """Connect the panel to the ranking tab's cards, card state, counters and table (refresh() redraws the
    last two)."""
    def apply(name):
        try:
            s = lab.use_scenario(name)
        except LabError as e:
            return *[gr.update()] * 5, err(str(e))
        goal = (f"**{s.title}**: {s.goal} Judge `{s.judge}`, {s.n_prompts} prompts × {s.k} answers; then train "
                f"the reward model (how well the taste was learned) and "
                f"{'run DPO on the same pairs' if s.algorithm == 'dpo' else f'run {s.ppo_steps} PPO steps'}.")
        return s.judge, s.prompt_set, s.n_prompts, s.k, s.max_new_tokens, goal

    def run(judge, source, n, k, max_new):
        try:
            cfg = GenerationConfig(k=int(k), max_new_tokens=int(max_new))
            prompts = None if source in (None, JUDGES_PROMPTS) else list(prompt_set(source))
            lab.simulate(judge, int(n), cfg, seed=random.randrange(2**31), prompts=prompts, inline=False)
        except LabError as e:
            return err(str(e)), gr.update(), gr.update()
        # The cards now show the judge's answers: nothing of theirs is left for a person to save.
        return (ok(f"Autopilot started: judge `{judge}` ranks {int(n)} prompts × {int(k)} answers."),
                progress_html("autopilot: starting…", 0.0, True), dict(empty))

    def tick(last_seen):
        marker = job_marker(lab, JOB_NAMES)
        if marker == last_seen:
            return *[gr.update()] * (3 + 2 * MAX_K), last_seen
        html, _ = job_view(lab, JOB_NAMES)
        # Cards change only when this page saw the judge add rows: after a reload they keep the person's
        # unranked cards (restored on load), not the last autopilot's.
        judged = last_seen is not None and marker[0] != last_seen[0]
        return (html, *card_updates(latest_row(lab) if judged else None), *refresh(), marker)

    settings = [parts["judge"], parts["source"], parts["n"], parts["k"], parts["max_new"]]
    for name, button in parts["scenario_buttons"]:
        button.click(lambda n=name: apply(n), None, settings + [parts["goal"]])
    parts["run"].click(run, settings, [parts["message"], parts["progress"], current], api_name="autopilot")
    parts["stop"].click(lambda: ok("Stopping…") if lab.stop() else err("Nothing is running."), None,
                        [parts["message"]], api_name="stop_autopilot")
    parts["timer"].tick(tick, [parts["seen"]], [parts["progress"], *cards, *columns, count_md, table, parts["seen"]],
                        show_progress="hidden")
