"""SFT tab: train the policy on the answers you wrote (demonstrations); loss and held-out likelihood live."""
from __future__ import annotations

import gradio as gr

from ..config import SFTConfig
from ..errors import LabError
from ..plots import sft_figure
from .common import err, ok, progress_html
from .lineage_view import last_run_text
from .training_panel import panel

JOB = "SFT"


def result_text(lab) -> str:
    if lab.session is None:
        return ""
    n = len(lab.demonstrations())
    return (f"{n} demonstration{'s' if n != 1 else ''} in this session (write them under the cards on the "
            f"ranking tab, or `python -m rlhf_lab import-demonstrations`).\n\n{last_run_text(lab, 'sft')}")


def build(lab):
    with gr.Tab("SFT"):
        gr.Markdown("Supervised fine-tuning on the answers you wrote: the policy LoRA learns to say them (loss on "
                    "the answer tokens only, chat template applied). A share of prompts is held out to measure "
                    "how likely their answers became. It starts from the current policy version and saves the "
                    "next one; PPO and DPO can then start from it.")
        with gr.Row():
            epochs = gr.Slider(1, 20, value=SFTConfig.epochs, step=1, label="epochs")
            lr = gr.Number(value=SFTConfig.learning_rate, label="learning rate")
        run_btn, message, progress = panel(lab, JOB, "sft", sft_figure, result_text, "sft", "Run SFT")

    def run(epochs_v, lr_v):
        try:
            lab.sft(SFTConfig(epochs=int(epochs_v), learning_rate=float(lr_v)), inline=False)
            return ok("SFT started."), progress_html("SFT: starting…", 0.0, True)
        except LabError as e:
            return err(str(e)), gr.update()

    run_btn.click(run, [epochs, lr], [message, progress], api_name="run_sft")
    return {}
