"""The run report: one self-contained HTML file of a session's run, for attendees to keep.

plotly.js is inlined, so the file opens with no network; every text from the session (prompts, answers,
names) is escaped. `render` is a pure function of the numbers lab/report.py gathers.
"""
from __future__ import annotations

import html
import time

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from . import metrics as M
from .plots import ppo_figure, reward_figure
from .story import story

DPO_PLOTTED = ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"]
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ddd; padding: 4px 8px;
  vertical-align: top; text-align: left; }
.answer { white-space: pre-wrap; max-width: 480px; } .story li { font-size: 1.15em; margin: 0.3em 0; }
.muted { color: #666; }
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def table(rows: list[dict], columns: list[str], classes: dict | None = None) -> str:
    """An HTML table of `rows` (dicts) in `columns` order, every cell escaped."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td class='{(classes or {}).get(c, '')}'>{esc(_cell(r.get(c)))}</td>"
                                    for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def figure_html(fig: go.Figure) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})


def metric_figure(df: pd.DataFrame, keys: list[str], title: str) -> go.Figure:
    """One line per metric of `keys` present in `df`, over its steps."""
    fig = go.Figure()
    for key in keys:
        if key in df and df[key].notna().any():
            part = df[df[key].notna()]
            fig.add_trace(go.Scatter(x=part["step"], y=part[key], name=key, mode="lines+markers"))
    fig.update_layout(title=title, height=360, xaxis_title="step")
    return fig


def settings_rows(meta: dict) -> list[dict]:
    model = meta.get("model") or {}
    rm = meta.get("reward_model") or {}
    rows = [("session", meta.get("name")), ("scenario", meta.get("scenario")), ("model", model.get("model")),
            ("precision", model.get("precision")), ("system prompt", model.get("system_prompt")),
            ("policy version", meta.get("policy_version")), ("round", meta.get("round")),
            ("PPO steps so far", meta.get("ppo_steps") or None), ("KL coefficient now", meta.get("kl_coef")),
            ("reward model trained", time.strftime("%Y-%m-%d %H:%M", time.localtime(rm["trained_at"]))
             if rm.get("trained_at") else None)]
    return [{"setting": k, "value": v} for k, v in rows if v is not None]


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value:.0%}"


def reward_rows(rm: dict | None) -> list[dict]:
    if not rm:
        return []
    acc, ci, r2 = rm.get(M.EVAL_RM_ACCURACY), rm.get("eval/accuracy_ci"), rm.get(M.RM_LENGTH_R2)
    rows = [("held-out accuracy", None if acc is None else f"{acc:.0%}"),
            ("95% interval", f"{ci[0]:.0%}–{ci[1]:.0%}" if ci else None),
            ("held-out accuracy, each prompt at the epoch the other held-out prompts chose",
             _pct(rm.get(M.EVAL_RM_ACCURACY_LOPO))),
            ("held-out pairs", rm.get("pairs_eval")), ("training pairs", rm.get("pairs_train")),
            ("length bias (share of its scores answer length explains)", None if r2 is None else f"{r2:.0%}"),
            ("held-out accuracy of the length rule alone", _pct(rm.get(M.EVAL_LENGTH_RULE_ACCURACY))),
            ("accuracy where length points the wrong way (pairs)",
             None if rm.get(M.EVAL_RM_ACCURACY_AGAINST_LENGTH) is None else
             f"{rm[M.EVAL_RM_ACCURACY_AGAINST_LENGTH]:.0%} ({rm.get('pairs_against_length')})")]
    return [{"measure": label, "value": value} for label, value in rows if value is not None]


def sections(data: dict) -> list[str]:
    meta, logged = data["meta"], data.get("metrics") or []
    metrics = M.to_frame(logged)

    def phase(name: str) -> pd.DataFrame:
        return M.to_frame(logged, name)

    ppo_rows = phase("ppo").to_dict("records")
    dpo = phase("dpo")
    lines = story(data["counts"], meta.get("reward_model"), ppo_rows, data.get("evaluation"), data.get("judge"),
                  dpo.to_dict("records"), data.get("ppo_stop"))
    out = ["<h2>What happened</h2><ul class='story'>" + "".join(f"<li>{esc(x)}</li>" for x in lines) + "</ul>",
           "<h2>Settings</h2>" + table(settings_rows(meta), ["setting", "value"]),
           "<h2>Rankings</h2>" + table([data["counts"]], list(data["counts"]))]
    rm = meta.get("reward_model")
    if rm:
        warnings = "".join(f"<p>⚠️ {esc(w)}</p>" for w in rm.get("warnings") or [])
        out.append("<h2>Reward model</h2>" + table(reward_rows(rm), ["measure", "value"]) + warnings +
                   figure_html(reward_figure(phase("reward"))))
    if not metrics.empty and M.KL in metrics:
        out.append("<h2>PPO</h2>" + figure_html(ppo_figure(phase("ppo"))))
    if not dpo.empty:
        out.append("<h2>DPO</h2>" + figure_html(metric_figure(dpo, DPO_PLOTTED, "DPO")))
    out.append(before_after(data.get("evaluation")))
    if data.get("leaderboard"):
        rows = data["leaderboard"]
        out.append("<h2>Arena leaderboard</h2>" + table(rows, list(dict.fromkeys(k for r in rows for k in r))))
    return out


def before_after(result: dict | None) -> str:
    if not result or not result.get("examples"):
        return ("<h2>Before and after</h2><p class='muted'>No answers compared yet: run `evaluate`, or the "
                "report with --samples.</p>")
    head = (f"<p>Policy <b>{esc(result.get('policy'))}</b> against the original model, same prompts and seeds"
            + (f"; judge “{esc(result['judge'])}”: {result['policy_score']:.2f} against "
               f"{result['reference_score']:.2f}" if result.get("policy_score") is not None else "") + ".</p>")
    rows = [{"prompt": e["prompt"], "original model": e["reference"], "new policy": e["policy"]}
            for e in result["examples"]]
    wide = {"original model": "answer", "new policy": "answer"}
    return "<h2>Before and after</h2>" + head + table(rows, ["prompt", "original model", "new policy"], wide)


def render(data: dict) -> str:
    """The whole report. data: {"meta": session.json as a dict, "counts", "metrics": metric rows,
    "evaluation": an evaluate result or None, "judge": name or None, "leaderboard": rows or None,
    "ppo_stop": the current policy's PPO run's {"round", "message"} where it stopped at the KL limit, or None}."""
    name = esc(data["meta"].get("name", ""))
    body = "\n".join(sections(data))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>rlhf_lab report: {name}</title>"
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
            f"<h1>rlhf_lab run report: session {name}</h1>"
            f"<p class='muted'>Written {esc(time.strftime('%Y-%m-%d %H:%M'))}. Opens without a network.</p>"
            f"{body}</body></html>")
