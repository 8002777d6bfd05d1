"""The lab in Jupyter: Notebook's bars and clean interrupt on a tiny model, the inline UI over the same Lab, and
(slow) notebooks/tour.ipynb executed headless in a real ipykernel from this venv."""
from __future__ import annotations

import ast
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from rlhf_lab.config import GenerationConfig, ModelConfig, PPOConfig, RewardConfig
from rlhf_lab.errors import Stopped
from rlhf_lab.lab import Lab
from rlhf_lab.notebook import Notebook
from rlhf_lab.runtime import model_thread

ROOT = Path(__file__).resolve().parent.parent
GEN = GenerationConfig(k=3, max_new_tokens=8, seed=0)


@pytest.fixture
def nb(tiny_model_dir, tiny_models, tmp_path):
    lab = Lab(tmp_path / "sessions", model_cfg=ModelConfig(model=str(tiny_model_dir), precision="fp32", lora_r=4))
    lab.models, lab.model_cfg = tiny_models, lab.default_model_cfg
    lab.open_session("nb", create=True)
    yield Notebook(lab, bars=False)
    model_thread.call(lab.models.reset_policy)


def test_entry_point_is_lab_and_notebook_module_loads_no_gradio():
    import rlhf_lab
    assert rlhf_lab.Lab is Lab
    code = "import sys, rlhf_lab.notebook; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
    top = ast.parse((ROOT / "rlhf_lab" / "notebook.py").read_text()).body  # ui is imported inside ui() only
    assert not any(isinstance(n, ast.ImportFrom) and n.module == "ui" for n in top)


def test_long_calls_return_plain_data_and_frames(nb, capsys):
    nb.bars = True  # the bar's own drawing runs too (a text bar here: no ipywidgets outside Jupyter)
    seen = []
    card = nb.generate("Say hi.", GEN, on_row=seen.append)
    assert len(card["texts"]) == 3 and card["done"] and seen[-1] is card
    summary = nb.simulate("concise", 4, GEN, seed=1)
    assert summary["summary"] and summary["ranked"] == 4 and not summary["stopped"]
    assert "autopilot (concise): 100%" in capsys.readouterr().err
    assert len(nb.last_rows) == 5 and [r["progress"] for r in nb.last_rows[:4]] == [0.25, 0.5, 0.75, 1.0]
    frame = nb.rankings_frame()
    assert len(frame) == 4 and set(frame["annotator"]) == {"judge:concise"}
    assert {"prompt", "chosen", "rejected"} <= set(nb.pairs_frame().columns) and len(nb.pairs_frame()) > 0
    rm = nb.train_reward(RewardConfig(epochs=1, lora_r=4, lora_layers=2, eval_fraction=0.25))
    assert rm["summary"] and rm["trained"]
    reward = nb.metrics_frame("reward")
    assert "reward/loss" in reward and len(reward) >= 1
    assert nb.reward_figure().data  # traces drawn from the log, not the empty placeholder
    assert list(nb.versions_frame()["version"])[:1] == ["base"]
    assert nb.votes_frame().empty
    assert nb.counts() == nb.lab.counts()  # anything else is the Lab's own method


def test_interrupt_stops_the_job_cleanly_like_the_ui_stop(nb):
    for i in range(6):  # by hand: the tiny random model's answers can all tie for a judge
        nb.rank(f"Question {i}?", [f"Good answer {i}.", f"Bad {i}", f"Worse answer {i}!!"], [[0], [1], [2]])
    nb.train_reward(RewardConfig(epochs=1, lora_r=4, lora_layers=2))
    cfg = PPOConfig(batch_size=4, max_new_tokens=8, num_ppo_epochs=1, num_mini_batches=1)

    def kernel_stop_button(row):
        raise KeyboardInterrupt  # what the kernel's interrupt raises in the cell's thread

    with pytest.raises(Stopped, match="stopped at your interrupt and ended cleanly") as caught:
        nb.ppo(50, cfg, on_row=kernel_stop_button)
    summary = caught.value.rows[-1]
    assert summary["summary"] and summary["stopped"] and 1 <= summary["steps"] < 50
    assert f"policy_version={summary['policy_version']}" in str(caught.value)
    assert nb.lab.jobs.current is None and nb.lab.status()["busy"] is None  # the slot is free again
    assert len(nb.metrics_frame("ppo")) == summary["steps"]  # the undone step logged nothing
    assert nb.ppo(1, cfg)["steps"] == 1  # and the lab runs the next job as usual
    assert nb.ppo_figure().data
    result = nb.evaluate("enthusiastic", 2, cfg)
    assert math.isfinite(result["policy_score"]) and math.isfinite(result["kl"])


def test_a_real_sigint_while_the_cell_waits_stops_the_job(nb):
    """The kernel's stop button sends SIGINT: KeyboardInterrupt lands wherever the cell's thread is, here while
    it waits for the next row; the job still ends through its own stop path."""
    for i in range(6):
        nb.rank(f"Question {i}?", [f"Good answer {i}.", f"Bad {i}", f"Worse answer {i}!!"], [[0], [1], [2]])
    nb.train_reward(RewardConfig(epochs=1, lora_r=4, lora_layers=2))
    cfg = PPOConfig(batch_size=4, max_new_tokens=8, num_ppo_epochs=1, num_mini_batches=1)
    started, done = [], threading.Event()

    def keep_interrupting():
        # From another thread, as the kernel's signal arrives; again until the cell has asked the job to stop,
        # so one signal that lands between two rows' handling cannot make the test pass or fail by timing.
        while not done.is_set() and not nb.lab.jobs.stop_event.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            done.wait(0.5)

    def interrupt_soon(row):
        if not started:
            started.append(threading.Thread(target=keep_interrupting, daemon=True))
            started[0].start()

    # Python's own handler (KeyboardInterrupt), as in a kernel; a server started by another test may have
    # installed its own in this process.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(Stopped) as caught:
            nb.ppo(50, cfg, on_row=interrupt_soon)
    finally:
        done.set()
        signal.signal(signal.SIGINT, previous)
    summary = caught.value.rows[-1]
    assert summary["stopped"] and 1 <= summary["steps"] < 50 and nb.lab.jobs.current is None
    assert len(nb.metrics_frame("ppo")) == summary["steps"]


def test_inline_ui_shares_the_lab(nb):
    url = nb.ui()
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200 and b"rlhf_lab" in page.read()
        nb.lab.rank("Say hi.", ["Hi!", "Hello there."], [[1], [0]])  # as the app's Save does, on the same Lab
        assert list(nb.rankings_frame()["prompt"]) == ["Say hi."]
    finally:
        nb.close_ui()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)


def test_tour_is_stored_as_generated_without_outputs():
    nbformat = pytest.importorskip("nbformat", reason="requirements-test.txt (make test installs it)")
    sys.path.insert(0, str(ROOT / "notebooks"))
    try:
        from make_tour import build
    finally:
        sys.path.remove(str(ROOT / "notebooks"))
    stored = nbformat.read(ROOT / "notebooks" / "tour.ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in stored.cells] == [(c.cell_type, c.source) for c in build().cells]
    code = [c for c in stored.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert any("lab.rank(" in c.source for c in code) and any("nb.ui()" in c.source for c in code)


NUMBERS = ("held_out_accuracy", "policy_score", "reference_score", "kl")


@pytest.mark.slow
def test_tour_notebook_runs_headless(tmp_path):
    """Executes notebooks/tour.ipynb in a kernel from this venv, registered in a temporary JUPYTER_PATH only."""
    nbformat = pytest.importorskip("nbformat", reason="requirements-test.txt (make test installs it)")
    NotebookClient = pytest.importorskip("nbclient", reason="requirements-test.txt").NotebookClient

    kernels = tmp_path / "jupyter" / "kernels" / "rlhf-lab-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rlhf_lab test", "language": "python"}))
    env = {"JUPYTER_PATH": str(tmp_path / "jupyter"), "RLHF_LAB_SESSIONS": str(tmp_path / "sessions"),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", "1"), "PYTHONPATH": str(ROOT)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel process inherits them
    try:
        book = nbformat.read(ROOT / "notebooks" / "tour.ipynb", as_version=4)
        started = time.monotonic()
        NotebookClient(book, kernel_name="rlhf-lab-test", timeout=900, allow_errors=False,
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
        wall = time.monotonic() - started
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    nbformat.write(book, tmp_path / "tour.executed.ipynb")  # to read after a failure; never committed
    print(f"tour.ipynb ran in {wall:.0f} s; executed copy: {tmp_path / 'tour.executed.ipynb'}")
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    found = {}
    for line in text.splitlines():
        if line.startswith("RESULT "):
            found.update(json.loads(line[len("RESULT "):]))
    print("tour numbers:", found)
    assert set(NUMBERS) <= set(found), text[-2000:]
    assert all(isinstance(found[k], (int, float)) and math.isfinite(found[k]) for k in NUMBERS), found
    assert 0.0 <= found["held_out_accuracy"] <= 1.0 and found["kl"] > -1.0
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) >= 2  # the reward-model and PPO figures render inline
