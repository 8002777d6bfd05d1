"""Plotly figures drawn from the metric log."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import metrics as M


def _empty(title: str, hint: str) -> go.Figure:
    fig = go.Figure()
    # No axes and no plot-area box: an empty frame with gridlines would look like data that is missing.
    fig.update_layout(title=title, height=320, xaxis_visible=False, yaxis_visible=False,
                      plot_bgcolor="rgba(0,0,0,0)",
                      annotations=[dict(text=hint, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")])
    return fig


def _step_axes(fig, df: pd.DataFrame, title: str) -> None:
    """Whole-number step ticks (never 1.5) at most ~8 of them, an axis title on every x axis, and plain
    decimals on the y axes (plotly's default SI prefixes print a clip fraction of 0.0006 as "600µ")."""
    top = int(df["step"].max()) if "step" in df and df["step"].notna().any() else 1
    fig.update_xaxes(title_text=title, tickformat="d", tick0=0, dtick=max(1, -(-top // 8)))
    fig.update_yaxes(exponentformat="none")


def _line(fig, df, x, key, name, row, col, **style):
    if key in df and df[key].notna().any():
        part = df[df[key].notna()]
        fig.add_trace(go.Scatter(x=part[x], y=part[key], name=name, mode="lines+markers", **style), row, col)


def reward_figure(df: pd.DataFrame) -> go.Figure:
    """Training loss and accuracy per step, held-out loss and accuracy per epoch, for the latest training run."""
    if df.empty or M.RM_LOSS not in df:
        return _empty("Reward model", "Train the reward model to see its loss and accuracy here.")
    if "run" in df:
        df = df[df["run"] == df["run"].iloc[-1]]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Bradley–Terry loss", "accuracy"))
    _line(fig, df, "step", M.RM_LOSS, "train loss", 1, 1)
    _line(fig, df, "step", M.EVAL_RM_LOSS, "held-out loss", 1, 1, line=dict(width=3))
    _line(fig, df, "step", M.RM_ACCURACY, "train accuracy", 1, 2)
    _line(fig, df, "step", M.EVAL_RM_ACCURACY, "held-out accuracy", 1, 2, line=dict(width=3))
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=1, col=2)
    _step_axes(fig, df, "optimizer step")
    fig.update_layout(height=340, title="Reward model training", legend=dict(orientation="h", y=-0.25))
    return fig


def ppo_figure(df: pd.DataFrame) -> go.Figure:
    """Per PPO step: reward-model score (and the judge's gold score), KL, answer length and finished share,
    kl_coef, entropy and clip fraction, over all rounds."""
    if df.empty or M.KL not in df:
        return _empty("PPO", "Run PPO steps to see reward and KL over time.")
    titles = ("score: reward model (proxy) vs judge (gold)", "KL to reference (nats)", "answer length (tokens)",
              "share of answers finished", "kl_coef · entropy", "clip fraction")
    fig = make_subplots(rows=2, cols=3, subplot_titles=titles, vertical_spacing=0.16)
    _line(fig, df, "step", M.SCORES, "reward model score", 1, 1)
    _line(fig, df, "step", M.RLHF_REWARD, "score − β·KL", 1, 1, line=dict(dash="dot"))
    _line(fig, df, "step", M.GOLD_SCORES, "judge score (gold)", 1, 1, line=dict(width=3))
    _line(fig, df, "step", M.KL, "KL (k3)", 1, 2)
    _line(fig, df, "step", M.KL_K1, "KL (k1)", 1, 2, line=dict(dash="dot"))
    _line(fig, df, "step", M.LENGTH, "length", 1, 3)
    _line(fig, df, "step", M.FINISHED, "finished", 2, 1)
    _line(fig, df, "step", M.KL_COEF, "kl_coef", 2, 2)
    _line(fig, df, "step", M.ENTROPY, "entropy", 2, 2)
    _line(fig, df, "step", M.CLIPFRAC, "clip fraction", 2, 3)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=2, col=1)
    fig.update_yaxes(tickformat=".2~%", row=2, col=3)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    _step_axes(fig, df, "PPO step")
    fig.update_layout(height=560, title="PPO", legend=dict(orientation="h", y=-0.14))
    return fig


def _latest_run(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["run"] == df["run"].iloc[-1]] if "run" in df else df


def dpo_figure(df: pd.DataFrame) -> go.Figure:
    """The latest DPO run: loss, implicit-reward margin and accuracy (training batches and held-out pairs), and
    the chosen and rejected rewards, per optimizer step."""
    if df.empty or M.held_out(M.REWARDS_ACCURACIES) not in df:
        return _empty("DPO", "Run DPO to see its loss and implicit rewards here.")
    df = _latest_run(df)
    fig = make_subplots(rows=1, cols=4, subplot_titles=("DPO loss", "reward margin (chosen − rejected)",
                                                        "reward accuracy", "rewards: chosen vs rejected"))
    for col, key in ((1, M.DPO_LOSS), (2, M.REWARDS_MARGINS), (3, M.REWARDS_ACCURACIES)):
        _line(fig, df, "step", key, f"train {key}", 1, col)
        _line(fig, df, "step", M.held_out(key), f"held-out {key}", 1, col, line=dict(width=3))
    _line(fig, df, "step", M.REWARDS_CHOSEN, "chosen", 1, 4)
    _line(fig, df, "step", M.REWARDS_REJECTED, "rejected", 1, 4, line=dict(dash="dot"))
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=1, col=3)
    _step_axes(fig, df, "optimizer step")
    fig.update_layout(height=360, title="DPO", legend=dict(orientation="h", y=-0.3))
    return fig


def sft_figure(df: pd.DataFrame) -> go.Figure:
    """The latest SFT run: loss per answer token (training batches and held-out demonstrations) and the held-out
    demonstrations' log-likelihood, per optimizer step."""
    if df.empty or M.EVAL_DEMO_LOGPS not in df:
        return _empty("SFT", "Run SFT on your demonstrations to see its loss here.")
    df = _latest_run(df)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss per answer token",
                                                        "held-out demonstrations: log-likelihood (nats)"))
    _line(fig, df, "step", M.SFT_LOSS, "train loss", 1, 1)
    _line(fig, df, "step", M.held_out(M.SFT_LOSS), "held-out loss", 1, 1, line=dict(width=3))
    _line(fig, df, "step", M.EVAL_DEMO_LOGPS, "held-out log-likelihood", 1, 2, line=dict(width=3))
    _step_axes(fig, df, "optimizer step")
    fig.update_layout(height=340, title="SFT", legend=dict(orientation="h", y=-0.25))
    return fig
