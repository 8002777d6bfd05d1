"""Plotly figures drawn from the metric log."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import metrics as M


def _empty(title: str, hint: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, height=320, annotations=[dict(text=hint, showarrow=False, x=0.5, y=0.5,
                                                                xref="paper", yref="paper")])
    return fig


def reward_figure(df: pd.DataFrame) -> go.Figure:
    """Training loss and accuracy per step, held-out accuracy per epoch, for the latest training run."""
    if df.empty or M.RM_LOSS not in df:
        return _empty("Reward model", "Train the reward model to see its loss and accuracy here.")
    if "run" in df:
        df = df[df["run"] == df["run"].iloc[-1]]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    train = df[df[M.RM_LOSS].notna()]
    fig.add_trace(go.Scatter(x=train["step"], y=train[M.RM_LOSS], name=M.RM_LOSS, mode="lines+markers"), 1, 1)
    fig.add_trace(go.Scatter(x=train["step"], y=train[M.RM_ACCURACY], name=M.RM_ACCURACY,
                             mode="lines+markers"), 1, 2)
    if M.EVAL_RM_ACCURACY in df:
        ev = df[df[M.EVAL_RM_ACCURACY].notna()]
        fig.add_trace(go.Scatter(x=ev["step"], y=ev[M.EVAL_RM_ACCURACY], name=M.EVAL_RM_ACCURACY,
                                 mode="lines+markers", line=dict(width=3)), 1, 2)
    fig.update_yaxes(range=[0, 1.05], row=1, col=2)
    fig.update_layout(height=320, title="Reward model training", legend=dict(orientation="h", y=-0.2))
    return fig


def ppo_figure(df: pd.DataFrame) -> go.Figure:
    """Reward, score, KL (and kl_coef, entropy, clipfrac) against PPO step, over all rounds."""
    if df.empty or M.KL not in df:
        return _empty("PPO", "Run PPO steps to see reward and KL over time.")
    titles = ("reward (rlhf_reward, scores)", "KL to reference (nats)", "kl_coef",
              "entropy", "clipfrac", "")
    fig = make_subplots(rows=2, cols=3, subplot_titles=titles)
    x = df["step"]
    fig.add_trace(go.Scatter(x=x, y=df[M.RLHF_REWARD], name=M.RLHF_REWARD, mode="lines+markers"), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=df[M.SCORES], name=M.SCORES, mode="lines+markers"), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=df[M.KL], name=M.KL, mode="lines+markers"), 1, 2)
    for col, name in ((3, M.KL_COEF),):
        fig.add_trace(go.Scatter(x=x, y=df[name], name=name, mode="lines+markers"), 1, col)
    for col, name in ((1, M.ENTROPY), (2, M.CLIPFRAC)):
        fig.add_trace(go.Scatter(x=x, y=df[name], name=name, mode="lines+markers"), 2, col)
    fig.update_layout(height=520, title="PPO", legend=dict(orientation="h", y=-0.12))
    return fig
