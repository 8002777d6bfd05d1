"""DPO tab: train the policy straight on your rankings (no reward model); implicit rewards plotted live."""
from __future__ import annotations

import gradio as gr

from ..config import DPOConfig
from ..config.dpo import LOSS_TYPES
from ..errors import LabError
from ..plots import dpo_figure
from .common import err, ok, progress_html
from .lineage_view import last_run_text
from .training_panel import panel

JOB = "DPO"


def build(lab):
    with gr.Tab("DPO"):
        gr.Markdown("Direct Preference Optimization: the policy LoRA learns your pairs directly, with no reward "
                    "model and no sampling. The reference is the base with adapters off; β sets how far the "
                    "policy may move. It uses the reward model's pairs (rankings and written answers) and holds "
                    "out the same prompts. It starts from the current policy version and saves the next one.")
        with gr.Row():
            beta = gr.Number(value=DPOConfig.beta, label="β (beta)")
            loss = gr.Radio(list(LOSS_TYPES), value=DPOConfig.loss_type, label="loss")
            epochs = gr.Slider(1, 10, value=DPOConfig.epochs, step=1, label="epochs")
            lr = gr.Number(value=DPOConfig.learning_rate, label="learning rate")
        run_btn, message, progress = panel(lab, JOB, "dpo", dpo_figure, lambda lab_: last_run_text(lab_, "dpo"),
                                           "dpo", "Run DPO")

    def run(beta_v, loss_v, epochs_v, lr_v):
        try:
            cfg = DPOConfig(beta=float(beta_v), loss_type=loss_v, epochs=int(epochs_v), learning_rate=float(lr_v))
            lab.dpo(cfg, inline=False)
            return ok("DPO started."), progress_html("DPO: starting…", 0.0, True)
        except LabError as e:
            return err(str(e)), gr.update()

    run_btn.click(run, [beta, loss, epochs, lr], [message, progress], api_name="run_dpo")
    return {}
