"""Session tab: pick, create or reopen a session; shows the model and the session's state."""
from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from ..errors import LabError
from .common import err, ok
from .lineage_view import lineage_markdown


def session_summary(lab) -> str:
    if lab.session is None:
        return "No session open."
    meta, counts = lab.meta(), lab.counts()
    rm = meta.reward_model
    rm_text = (f"reward model: held-out accuracy {rm['eval/reward_accuracy']:.0%} on {rm['pairs_eval']} pairs"
               if rm and rm.get("eval/reward_accuracy") is not None else "no reward model yet")
    warn = "".join(f"\n\n⚠️ {w}" for w in lab.warnings)
    return (f"**Session `{lab.session.name}`** · model `{lab.model_cfg.model}` ({lab.model_cfg.precision}) · "
            f"policy `{meta.policy_version}` · round {meta.round}\n\n"
            f"{counts['rankings']} rankings · {counts['pairs']} pairs · {counts['all_bad']} all bad · "
            f"{counts['skipped']} skipped · {counts['demonstrations']} written answers · {rm_text}{warn}"
            f"\n\n{lineage_markdown(lab)}")


def build(lab):
    with gr.Tab("Session"):
        gr.Markdown(f"Sessions live in `{lab.sessions_dir.resolve()}/<name>/` (set by `--sessions-dir` or "
                    "`RLHF_LAB_SESSIONS`). Every ranking is on disk before the page says saved.",
                    elem_id="lab-sessions-dir")
        with gr.Row():
            existing = gr.Dropdown(label="Open a session", choices=lab.list_sessions(),
                                   value=lab.session.name if lab.session else None, interactive=True)
            open_btn = gr.Button("Open", variant="primary")
        with gr.Row():
            new_name = gr.Textbox(label="New session name", placeholder="letters, digits, - and _")
            create_btn = gr.Button("Create")
        message = gr.Markdown()
        summary = gr.Markdown(session_summary(lab), elem_id="lab-session-summary")
        with gr.Row():
            report_btn = gr.Button("Make the run report (one HTML file, opens offline)", elem_id="lab-report")
            report_file = gr.File(label="run report", interactive=False, elem_id="lab-report-file")

    def do_open(name):
        try:
            if not name:
                raise ValueError("Pick a session to open.")
            lab.open_session(name)
            return ok(f"Opened {name}."), session_summary(lab), gr.update(choices=lab.list_sessions(), value=name)
        except (LabError, ValueError) as e:
            return err(str(e)), session_summary(lab), gr.update()

    def do_create(name):
        try:
            lab.create_session((name or "").strip())
            return (ok(f"Created {name.strip()}."), session_summary(lab),
                    gr.update(choices=lab.list_sessions(), value=name.strip()))
        except LabError as e:
            return err(str(e)), session_summary(lab), gr.update()

    def make_report():
        try:
            name = lab.require_session().name
            out = Path(tempfile.mkdtemp(prefix="rlhf-report-")) / f"{name}-report.html"
            info = lab.report(out)
        except LabError as e:
            return err(str(e)), None
        return ok(f"Report written ({info['bytes'] / 2**20:.1f} MB): download it below."), str(out)

    report_btn.click(make_report, None, [message, report_file], api_name="report")
    open_btn.click(do_open, [existing], [message, summary, existing])
    create_btn.click(do_create, [new_name], [message, summary, existing])
    return {"summary": summary, "refresh": lambda: session_summary(lab),
            "sessions": existing}
