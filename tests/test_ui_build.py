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


def _records_lab(tmp_path, n=3):
    """A Lab with an open session of `n` rankings and no model (nothing here needs one)."""
    from dataclasses import asdict

    from rlhf_lab.config import ModelConfig
    from rlhf_lab.data.session import Session

    Session.create(tmp_path, "s", asdict(ModelConfig()))
    lab = Lab(tmp_path)
    lab.open_session("s", with_model=False)
    lab.model_cfg = ModelConfig()
    for i in range(n):
        lab.rank(f"prompt {i}", ["a", "b"], [[0], [1]])
    return lab


def test_rankings_table_never_scores_and_agreement_fills_in_later(tmp_path, monkeypatch):
    from rlhf_lab.ui import rankings_table as rt

    lab = _records_lab(tmp_path)
    monkeypatch.setattr(type(lab), "has_reward_model", property(lambda self: True))
    lab.session.update_meta(reward_model={"trained_at": 1.0})
    calls = []
    monkeypatch.setattr(lab, "agreement", lambda rec: calls.append(rec["id"]) or (1, 1))
    agree = {}
    df = rt.rankings_table(lab, agree)  # what the save path draws: no scoring at all
    assert calls == [] and list(df["RM agrees"]) == ["", "", ""]
    assert rt.fill_agreement(lab, agree) and len(calls) == 3
    assert list(rt.rankings_table(lab, agree)["RM agrees"]) == ["✔ 1/1"] * 3
    assert not rt.fill_agreement(lab, agree) and len(calls) == 3  # cached per ranking and reward model


def test_pending_cards_survive_until_ranked(tmp_path):
    lab = _records_lab(tmp_path, 0)
    lab.pending = {"prompt": "p", "texts": ["x", "y"], "policy": "base", "truncated": [False, True],
                   "scores": None, "done": True, "session": "s"}
    assert lab.pending_cards()["texts"] == ["x", "y"]
    lab.rank("other", ["x", "y"], [[0], [1]])
    assert lab.pending_cards() is not None  # a different ranking leaves them
    lab.rank("p", ["x", "y"], [[1], [0]])
    assert lab.pending_cards() is None


def test_job_view_shows_the_phase_inside_a_step_and_an_empty_bar_at_zero(tmp_path):
    from rlhf_lab.ui import CSS
    from rlhf_lab.ui.common import job_marker, job_view

    lab = Lab(tmp_path)
    job = lab.jobs.acquire("PPO")
    try:
        html, running = job_view(lab, ("PPO",))
        assert running and "starting" in html and "value='0'" in html
        before = job_marker(lab, ("PPO",))
        job.phase = {"text": "step 1 of 2: sampling 16 answers", "progress": 0.0}
        html, _ = job_view(lab, ("PPO",))
        assert "sampling 16 answers" in html and job_marker(lab, ("PPO",)) != before
        job.result = {"summary": True, "stopped": False, "message": "stopped at the KL limit: the answers after "
                      "step 5 were 4.4 nats from the reference, past 4"}
    finally:
        lab.jobs.release(job)
    html, running = job_view(lab, ("PPO",))  # a run that ended on its own terms says why, not "finished"
    assert not running and "PPO stopped at the KL limit: the answers after step 5" in html and "finished" not in html
    assert "appearance: none" in CSS and "::-webkit-progress-value" in CSS


def test_job_view_says_a_reward_model_stopped_at_its_time_budget(tmp_path):
    from rlhf_lab.ui.common import job_view

    lab = Lab(tmp_path)
    job = lab.jobs.acquire("train reward model")
    job.result = {"summary": True, "stopped": "time", "trained": True}
    lab.jobs.release(job)
    html, running = job_view(lab, ("train reward model",))
    assert not running and "stopped at its time budget; the best epoch so far was kept" in html
    assert "finished" not in html
    job = lab.jobs.acquire("train reward model")
    job.result = {"summary": True, "stopped": "time", "trained": False}
    lab.jobs.release(job)
    html, _ = job_view(lab, ("train reward model",))
    assert "before its first evaluation, so nothing was saved" in html and "kept" not in html


def test_plots_have_integer_step_ticks_axis_titles_and_plain_numbers():
    import pandas as pd

    from rlhf_lab import metrics as M
    from rlhf_lab.plots import ppo_figure, reward_figure

    df = pd.DataFrame({"step": [1, 2, 3], M.KL: [0.1, 0.2, 0.3], M.SCORES: [0.0, 0.1, 0.2],
                       M.CLIPFRAC: [0.0006, 0.001, 0.0]})
    fig = ppo_figure(df)
    xaxes = [fig.layout[k] for k in fig.layout if k.startswith("xaxis")]
    assert all(a.title.text == "PPO step" and a.dtick == 1 and a.tickformat == "d" for a in xaxes)
    assert all(fig.layout[k].exponentformat == "none" for k in fig.layout if k.startswith("yaxis"))
    empty = reward_figure(pd.DataFrame())
    assert empty.layout.xaxis.visible is False and empty.layout.yaxis.visible is False


def test_session_tab_names_the_real_sessions_folder(tmp_path):
    demo = build_ui(Lab(tmp_path / "elsewhere"))
    texts = [getattr(b, "value", "") or "" for b in demo.blocks.values() if isinstance(b, gr.Markdown)]
    assert any(str((tmp_path / "elsewhere").resolve()) in t for t in texts)
