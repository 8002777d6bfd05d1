"""The lab in Jupyter: progress bars, a clean stop on the kernel's interrupt, DataFrames, figures, the inline UI.

    from rlhf_lab import Lab
    from rlhf_lab.notebook import Notebook
    nb = Notebook(Lab())            # or Notebook.open("tour"): a Lab with that session open
    nb.simulate("enthusiastic", 8)  # a tqdm bar; returns the summary row

Every long call runs the Lab's own generator in a helper thread while the kernel's thread waits on a queue:
the kernel's stop button then raises KeyboardInterrupt in *this* module's loop, never inside the job's
generator, so the job is asked to stop (lab.stop(), as the UI's Stop button does), its generator undoes a
half-done step and ends, and only then does the cell end, with a `Stopped` error that says what was kept.
Anything not defined here (rank, counts, undo, leaderboard, ...) is the Lab's own method.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from . import metrics as M
from . import plots
from .data.pairs import Pair
from .errors import Stopped
from .lab import Lab

POLL_S = 0.2  # how often the bar is redrawn from the job's phase while a step runs
# Shown beside the bar when a row has them: the numbers a person watches during each job.
POSTFIX = (M.SCORES, M.KL, M.RM_LOSS, M.EVAL_RM_ACCURACY, M.DPO_LOSS, M.SFT_LOSS, "tokens", "votes")


def _progress(row: dict) -> float | None:
    if "progress" in row:
        return float(row["progress"])
    if row.get("max_new_tokens"):  # generate_stream's partial events
        return row.get("tokens", 0) / row["max_new_tokens"]
    return None


def _said(summary: dict | None) -> str:
    """What a stopped job kept, in words."""
    if not summary:
        return "no step had finished"
    kept = [f"{k}={summary[k]}" for k in ("steps", "ranked", "votes", "policy_version", "trained") if k in summary]
    return ", ".join(kept) or "its finished steps are kept"


def drive(lab: Lab, title: str, rows: Iterable[dict], on_row: Callable[[dict], None] | None = None,
          bar: bool = True) -> list[dict]:
    """Consume a job's rows in a helper thread with a tqdm bar; returns every row. `on_row` is called in the
    caller's thread for each row. A KeyboardInterrupt (the kernel's stop button, or raised by on_row) asks the
    job to stop, waits for it to end cleanly, then raises Stopped with the rows in `.rows`."""
    from tqdm.auto import tqdm

    items: queue.Queue = queue.Queue()

    def pump():
        try:
            for row in rows:
                items.put(("row", row))
        except BaseException as err:  # re-raised in the caller's thread
            items.put(("error", err))
        finally:
            items.put(("end", None))

    threading.Thread(target=pump, name=f"notebook:{title}", daemon=True).start()
    got: list[dict] = []
    interrupted = False
    progress = tqdm(total=100, desc=title, disable=not bar, bar_format="{l_bar}{bar}| {elapsed}{postfix}")
    try:
        while True:
            try:
                try:
                    kind, value = items.get(timeout=POLL_S)
                except queue.Empty:
                    if interrupted:
                        lab.stop()  # again: a job that had not taken its slot yet clears the first request
                    _show_phase(lab, progress)
                    continue
                if kind == "error":
                    raise value
                if kind == "end":
                    break
                got.append(value)
                _show_row(value, progress)
                if on_row is not None and not interrupted:
                    on_row(value)
            except KeyboardInterrupt:
                interrupted = True
                lab.stop()
                progress.set_description(f"{title}: stopping (the half-done step is undone)")
    finally:
        progress.close()
    if interrupted:
        summary = got[-1] if got and got[-1].get("summary") else None
        err = Stopped(f"{title} stopped at your interrupt and ended cleanly ({_said(summary)}); a half-done step "
                      "was undone and nothing else changed. Run the cell again to go on.")
        err.rows = got
        raise err
    return got


def _show_phase(lab: Lab, progress) -> None:
    if progress.disable:
        return
    job = lab.jobs.current
    phase = getattr(job, "phase", None) if job is not None else None
    before = (progress.n, progress.postfix)
    if phase and phase.get("progress") is not None:
        progress.n = max(progress.n, min(100, round(100 * phase["progress"])))
        progress.set_postfix_str(phase.get("text", ""), refresh=False)
    # Redraw on a change, else once a second for the clock: a text bar (no ipywidgets) prints every redraw.
    if (progress.n, progress.postfix) != before or time.monotonic() - progress.last_print_t >= 1.0:
        progress.refresh()


def _show_row(row: dict, progress) -> None:
    fraction = _progress(row)
    if fraction is not None:
        progress.n = min(100, round(100 * fraction))
    shown = {k.split("/")[-1]: round(row[k], 3) for k in POSTFIX if isinstance(row.get(k), (int, float))}
    if shown:
        progress.set_postfix(shown, refresh=False)
    if row.get("summary") or row.get("done"):
        progress.n = 100 if not row.get("stopped") else progress.n
    progress.refresh()


def _summary(rows: list[dict]) -> dict:
    return rows[-1] if rows and rows[-1].get("summary") else {}


class Notebook:
    """A Lab with progress bars, DataFrames, figures and the inline UI. `nb.lab` is the Lab itself."""

    def __init__(self, lab: Lab, bars: bool = True):
        self.lab = lab
        self.bars = bars
        self.last_rows: list[dict] = []  # every row of the last long call (samples, per-step metrics)
        self._demo = None

    @classmethod
    def open(cls, session: str, sessions_dir: Path | str | None = None, model_cfg=None, **kw) -> "Notebook":
        """A new Lab with `session` opened (created if missing) and its model loaded."""
        lab = Lab(sessions_dir, model_cfg) if sessions_dir is not None else Lab(model_cfg=model_cfg)
        lab.open_session(session, create=True)
        return cls(lab, **kw)

    def __getattr__(self, name):
        if name.startswith("_") or name == "lab":
            raise AttributeError(name)
        return getattr(self.lab, name)

    def _run(self, title: str, rows: Iterable[dict], on_row) -> list[dict]:
        self.last_rows = []
        try:
            self.last_rows = drive(self.lab, title, rows, on_row, self.bars)
        except Stopped as err:
            self.last_rows = getattr(err, "rows", [])
            raise
        return self.last_rows

    # ---- long calls: a bar while they run, plain data when they end -------------------------------------
    def generate(self, prompt: str, cfg=None, on_row=None) -> dict:
        """K answers of one prompt (the final event: texts, truncated, scores, seed, policy)."""
        return self._run("generate", self.lab.generate_stream(prompt, cfg), on_row)[-1]

    def simulate(self, judge: str, n_prompts: int, cfg=None, seed: int = 0, prompts=None, on_row=None) -> dict:
        """The judge ranks K answers for each of n prompts; returns the summary row."""
        return _summary(self._run(f"autopilot ({judge})",
                                  self.lab.simulate(judge, n_prompts, cfg, seed, prompts, inline=True), on_row))

    def train_reward(self, cfg=None, on_row=None) -> dict:
        """Train the reward model; returns the summary row (held-out accuracy, pairs, warnings)."""
        return _summary(self._run("reward model", self.lab.train_reward(cfg, inline=True), on_row))

    def ppo(self, steps: int, cfg=None, on_row=None) -> dict:
        """`steps` PPO updates; returns the summary row with the new policy_version (and, where the run stopped
        at the KL limit, a message that is also printed)."""
        summary = _summary(self._run("PPO", self.lab.ppo(steps, cfg, inline=True), on_row))
        if summary.get("message"):
            print(f"PPO {summary['message']}")
        return summary

    def dpo(self, cfg=None, on_row=None) -> dict:
        return _summary(self._run("DPO", self.lab.dpo(cfg, inline=True), on_row))

    def sft(self, cfg=None, on_row=None) -> dict:
        return _summary(self._run("SFT", self.lab.sft(cfg, inline=True), on_row))

    def run_arena(self, judge: str, versions=None, n_prompts: int = 16, cfg=None, seed: int = 0,
                  on_row=None) -> dict:
        return _summary(self._run(f"arena ({judge})", self.lab.run_arena(judge, versions, n_prompts, cfg, seed,
                                                                           inline=True), on_row))

    def evaluate(self, judge: str, n_prompts: int = 16, cfg=None, seed: int = 1234, prompts=None,
                 policy=None) -> dict:
        """The judge's score of the policy vs the reference on fresh samples, and the KL (one result; the bar
        shows elapsed time only, and an interrupt waits for the evaluation to finish: it has no step to undo)."""
        def one():
            yield {**self.lab.evaluate(judge, n_prompts, cfg, seed, prompts, policy), "progress": 1.0}
        try:
            result = dict(self._run("evaluate", one(), None)[-1])
        except Stopped as err:
            stopped = Stopped("evaluate has no step to stop at: it ran to the end and its result was saved "
                              "(evaluations.jsonl; the error's .rows hold it).")
            stopped.rows = err.rows
            raise stopped from None
        result.pop("progress")
        return result

    # ---- DataFrames -----------------------------------------------------------------------------------------
    def rankings_frame(self) -> pd.DataFrame:
        """One row per active ranking: prompt, verdict, annotator, policy, answers and the best-first order."""
        rows = [{"id": r["id"], "round": r.get("round"), "annotator": r.get("annotator"), "verdict": r["verdict"],
                 "policy": r.get("policy"), "prompt": r["prompt"], "answers": len(r["completions"]),
                 "ranking": r.get("ranking")} for r in self.lab.rankings()]
        return pd.DataFrame(rows, columns=["id", "round", "annotator", "verdict", "policy", "prompt", "answers",
                                           "ranking"])

    def pairs_frame(self) -> pd.DataFrame:
        """The preference pairs the reward model and DPO learn from (chosen over rejected)."""
        return pd.DataFrame([asdict(p) for p in self.lab.pairs()], columns=[f.name for f in fields(Pair)])

    def metrics_frame(self, phase: str | None = None) -> pd.DataFrame:
        """The metric log (metrics.jsonl), optionally one phase: "reward", "ppo", "dpo", "sft"."""
        rows, _ = self.lab.require_session().metrics()
        return M.to_frame(rows, phase)

    def versions_frame(self) -> pd.DataFrame:
        """The policy versions: algorithm, parent, round, data; "current" marks the session's policy."""
        return pd.DataFrame(self.lab.versions())

    def votes_frame(self, annotator: str | None = None) -> pd.DataFrame:
        return pd.DataFrame(self.lab.votes(annotator))

    # ---- figures: the same plotly figures the UI draws ------------------------------------------------------
    def reward_figure(self):
        """Reward model: Bradley-Terry loss and accuracy, training and held-out."""
        return plots.reward_figure(self.metrics_frame("reward"))

    def ppo_figure(self):
        """PPO: reward-model vs judge score, KL, answer length, finished share, kl_coef, clip fraction."""
        return plots.ppo_figure(self.metrics_frame("ppo"))

    def dpo_figure(self):
        return plots.dpo_figure(self.metrics_frame("dpo"))

    def sft_figure(self):
        return plots.sft_figure(self.metrics_frame("sft"))

    # ---- the Gradio app over this same Lab -------------------------------------------------------------------
    def ui(self, port: int | None = None, height: int = 900) -> str:
        """Show the lab's web app inline (bound to 127.0.0.1) over this same Lab: the loaded model and the open
        session are shared, so a ranking saved in the app is in nb.rankings_frame() at once. Returns its URL."""
        from .ui import CSS, HEAD, build_ui  # gradio is imported here only: the rest runs without it

        self.close_ui()
        demo = build_ui(self.lab)
        demo.queue(default_concurrency_limit=4)
        demo.launch(inline=True, server_name="127.0.0.1", server_port=port, share=False, height=height,
                    prevent_thread_lock=True, quiet=True, show_error=True, css=CSS, head=HEAD, footer_links=[])
        self._demo = demo
        return demo.local_url

    def close_ui(self) -> None:
        if self._demo is not None:
            self._demo.close()
            self._demo = None

