"""The panel the DPO and SFT tabs share: Run and Stop, the job's progress, a result line and a live plot of the
latest run, redrawn by a timer only when the job's rows change."""
from __future__ import annotations

import gradio as gr

from .common import err, job_marker, job_view, ok, phase_frame


def panel(lab, job: str, phase: str, figure, result, prefix: str, run_label: str):
    """Build the panel inside the current tab; returns (run button, message, progress) for the tab to wire Run.
    `figure(frame)` draws the metric log of `phase`; `result(lab)` says what the last run did, in words."""
    names = (job,)
    with gr.Row():
        run_btn = gr.Button(run_label, variant="primary", elem_id=f"lab-run-{prefix}")
        stop_btn = gr.Button("Stop", variant="stop", elem_id=f"lab-stop-{prefix}")
    message = gr.Markdown()
    progress = gr.HTML(job_view(lab, names)[0], elem_id=f"lab-{prefix}-progress")
    result_md = gr.Markdown(result(lab), elem_id=f"lab-{prefix}-result")
    plot = gr.Plot(figure(phase_frame(lab, phase)), elem_id=f"lab-{prefix}-plot")
    timer = gr.Timer(1.0)
    seen = gr.State(-1)

    def tick(last_seen):
        marker = job_marker(lab, names)
        if marker == last_seen:
            return gr.update(), gr.update(), gr.update(), last_seen
        return job_view(lab, names)[0], result(lab), figure(phase_frame(lab, phase)), marker

    stop_btn.click(lambda: ok("Stopping…") if lab.stop() else err("Nothing is running."), None, [message],
                   api_name=f"stop_{prefix}")
    timer.tick(tick, [seen], [progress, result_md, plot, seen], show_progress="hidden")
    return run_btn, message, progress
