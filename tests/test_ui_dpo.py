"""The DPO and SFT tabs, the written-answer box and the lineage on the Session tab, built without launching."""
import json
from dataclasses import asdict

import gradio as gr
import pandas as pd

from rlhf_lab import metrics as M
from rlhf_lab.config import ModelConfig
from rlhf_lab.data.session import Session
from rlhf_lab.lab import Lab
from rlhf_lab.ui import build_ui


def records_lab(tmp_path) -> Lab:
    Session.create(tmp_path, "s", asdict(ModelConfig()))
    lab = Lab(tmp_path)
    lab.open_session("s", with_model=False)
    lab.model_cfg = ModelConfig()
    return lab


def test_tabs_and_the_answer_box_are_there(tmp_path):
    demo = build_ui(records_lab(tmp_path))
    ids = {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    for wanted in ("lab-run-dpo", "lab-stop-dpo", "lab-dpo-plot", "lab-dpo-progress", "lab-run-sft", "lab-stop-sft",
                   "lab-sft-plot", "lab-demo-text", "lab-demo-save", "lab-demo-from"):
        assert wanted in ids, wanted
    answer = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "lab-demo-text")
    assert isinstance(answer, gr.Textbox)  # plain text in and out
    tabs = {b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)}
    assert {"DPO", "SFT", "PPO", "Session"} <= tabs


def test_written_answer_answers_the_cards_on_screen_or_the_last_ranking_of_that_prompt(tmp_path):
    from rlhf_lab.ui.demonstration_box import shown_cards

    lab = records_lab(tmp_path)
    on_screen = {"prompt": "Q", "texts": ["a", "b"], "truncated": [False, True], "policy": "base"}
    assert shown_cards(lab, on_screen, "ignored") == ("Q", ["a", "b"], [False, True], None)
    rec = lab.rank("Q", ["x", "y", "z"], [], verdict="all_bad", extra={"truncated": [True, False, False]})
    lab.rank("other", ["p", "q"], [[0], [1]])
    assert shown_cards(lab, {"texts": []}, " Q ") == ("Q", ["x", "y", "z"], [True, False, False], rec["id"])
    assert shown_cards(lab, {"texts": []}, "new prompt") == ("new prompt", [], [], None)


def test_session_tab_lists_the_lineage(tmp_path):
    from rlhf_lab.ui.lineage_view import last_run_text, lineage_markdown
    from rlhf_lab.ui.session_tab import session_summary

    lab = records_lab(tmp_path)
    assert "only `base`" in lineage_markdown(lab)
    for name, info in (("v001", {"algorithm": "sft", "parent": "base", "round": 1, "data": {"demonstrations": 16},
                                 "summary": {"step": 9, "start/eval/logps/demonstrations": -80.0,
                                             "eval/logps/demonstrations": -41.5}}),
                       ("v002", {"algorithm": "dpo", "parent": "v001", "round": 2,
                                 "data": {"rankings": 32, "pairs": 77},
                                 "summary": {"step": 14, "held_out": True, "pairs_eval": 21,
                                             "start/eval/rewards/accuracies": 0.0, "eval/rewards/accuracies": 0.81,
                                             "start/eval/rewards/margins": 0.0, "eval/rewards/margins": 0.42}})):
        folder = lab.session.adapter_dir("policy") / name
        folder.mkdir(parents=True)
        for f in ("adapter_model.safetensors", "head.safetensors", "adapter_config.json"):
            (folder / f).write_text("x")
        (folder / "info.json").write_text(json.dumps(info))
    lab.session.update_meta(policy_version="v002")
    table = lineage_markdown(lab)
    assert "| `v001` | SFT | `base` | 1 | 16 demonstrations |" in table
    assert "| `v002` ← current | DPO | `v001` | 2 | 32 rankings, 77 pairs |" in table
    assert table in session_summary(lab)
    assert "0% → 81%" in last_run_text(lab, "dpo") and "+0.00 → +0.42" in last_run_text(lab, "dpo")
    assert "-80.0 → -41.5" in last_run_text(lab, "sft")


def test_dpo_and_sft_figures_draw_the_latest_run():
    from rlhf_lab.plots import dpo_figure, sft_figure

    df = pd.DataFrame({"run": [1, 2, 2, 2], "step": [5, 0, 1, 1],
                       M.DPO_LOSS: [None, None, 0.69, None], M.REWARDS_MARGINS: [None, None, 0.1, None],
                       M.EVAL_DPO_ACCURACY: [0.9, 0.0, None, 0.6], M.EVAL_DPO_MARGINS: [1.0, 0.0, None, 0.2]})
    fig = dpo_figure(df)
    assert fig.data and all(5 not in list(t.x) for t in fig.data)  # the older run is not drawn
    assert {t.name for t in fig.data} >= {"train loss/dpo", "held-out rewards/accuracies"}
    assert dpo_figure(pd.DataFrame()).layout.xaxis.visible is False
    sft = sft_figure(pd.DataFrame({"step": [0, 1], M.SFT_LOSS: [None, 10.0], M.EVAL_DEMO_LOGPS: [-80.0, -70.0]}))
    assert {t.name for t in sft.data} == {"train loss", "held-out log-likelihood"}
