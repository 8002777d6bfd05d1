"""PPO tab: run N short PPO steps against the reward model; reward and KL plotted live."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from ..config import PPOConfig
from ..diagnostics import ppo_warnings
from ..plots import ppo_figure
from ..errors import LabError
from .common import err, job_marker, job_view, ok, phase_frame, progress_html

JOB_NAMES = ("PPO",)


def samples_frame(lab, limit: int = 24) -> pd.DataFrame:
    job = lab.jobs.current or lab.jobs.last
    rows = []
    if job is not None and job.name in JOB_NAMES:
        for row in job.rows:
            rows.extend(row.get("samples", []))
    return pd.DataFrame(rows[-limit:][::-1], columns=["step", "prompt", "completion", "score"])


def advice_text(lab) -> str:
    """Warnings in words about the latest PPO run (length collapse, proxy up while gold falls), and about the
    reward model before a run starts."""
    if lab.session is None:
        return ""
    said = list((lab.meta().reward_model or {}).get("warnings") or [])
    df = phase_frame(lab, "ppo")
    if not df.empty:
        last_round = df[df["round"] == df["round"].iloc[-1]] if "round" in df else df
        said += ppo_warnings(last_round.to_dict("records"))
    return "".join(f"⚠️ {w}\n\n" for w in said)


def build(lab):
    with gr.Tab("PPO"):
        gr.Markdown("Short PPO updates of the 4-bit policy's LoRA against your reward model. The reference is the "
                    "same base with adapters off; the KL penalty keeps the policy near it. Each finished run "
                    "saves a new policy version; the ranking tab then samples from it.")
        with gr.Row():
            steps = gr.Slider(1, 100, value=5, step=1, label="steps")
            batch = gr.Slider(2, 32, value=PPOConfig.batch_size, step=2, label="batch size (rollouts)")
            target = gr.Number(value=PPOConfig.target_kl, label="KL target (nats)")
            limit = gr.Number(value=PPOConfig.max_kl, label="KL limit (nats; 0 = none)")
            coef = gr.Number(value=PPOConfig.kl_coef, label="initial KL coefficient")
            adaptive = gr.Checkbox(value=PPOConfig.adaptive_kl, label="adaptive KL")
            lr = gr.Number(value=PPOConfig.learning_rate, label="learning rate")
        with gr.Row():
            run_btn = gr.Button("Run PPO steps", variant="primary", elem_id="lab-run-ppo")
            stop_btn = gr.Button("Stop", variant="stop", elem_id="lab-stop-ppo")
        message = gr.Markdown()
        progress = gr.HTML(job_view(lab, JOB_NAMES)[0], elem_id="lab-ppo-progress")
        advice = gr.Markdown(advice_text(lab), elem_id="lab-ppo-advice")
        plot = gr.Plot(ppo_figure(phase_frame(lab, "ppo")), elem_id="lab-ppo-plot")
        samples = gr.Dataframe(samples_frame(lab), label="Samples (newest first)", interactive=False, wrap=True,
                               column_widths=["64px", "30%", "55%", "80px"], max_chars=400,
                               elem_id="lab-ppo-samples", elem_classes=["lab-table"])
        timer = gr.Timer(1.0)
        seen = gr.State(-1)

    def run(steps_v, batch_v, target_v, limit_v, coef_v, adaptive_v, lr_v):
        try:
            batch_size = int(batch_v)
            cfg = PPOConfig(batch_size=batch_size, num_mini_batches=2 if batch_size % 2 == 0 else 1,
                            target_kl=float(target_v), max_kl=float(limit_v or 0), kl_coef=float(coef_v),
                            adaptive_kl=bool(adaptive_v), learning_rate=float(lr_v))
            lab.ppo(int(steps_v), cfg, inline=False)
            # The progress line answers at once; the timer then shows the phase of each step.
            return (ok(f"PPO started: {int(steps_v)} steps."),
                    progress_html(f"PPO step 1 of {int(steps_v)}: starting…", 0.0, True))
        except LabError as e:
            return err(str(e)), gr.update()

    def tick(last_seen):
        marker = job_marker(lab, JOB_NAMES)
        if marker == last_seen:
            return gr.update(), gr.update(), gr.update(), gr.update(), last_seen
        html, _ = job_view(lab, JOB_NAMES)
        return html, ppo_figure(phase_frame(lab, "ppo")), samples_frame(lab), advice_text(lab), marker

    run_btn.click(run, [steps, batch, target, limit, coef, adaptive, lr], [message, progress], api_name="run_ppo")
    stop_btn.click(lambda: ok("Stopping…") if lab.stop() else err("Nothing is running."), None, [message],
                   api_name="stop_ppo")
    timer.tick(tick, [seen], [progress, plot, samples, advice, seen], show_progress="hidden")
    return {}
