"""Bad input, from the CLI, the Lab and the UI's endpoints: each gets a clear message and the disk is unchanged.

A tiny random llama stands in for the model so every case runs in seconds; the checks are about input
handling, not the model.
"""
import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rlhf_lab.config import ConfigError, GenerationConfig, ModelConfig, PPOConfig, RewardConfig
from rlhf_lab.errors import LabError
from rlhf_lab.lab import Lab
from rlhf_lab.errors import LabBusy
from rlhf_lab.errors import ModelLoadError
from rlhf_lab.errors import RankingInputError
from rlhf_lab.errors import NotEnoughPairs
from rlhf_lab.errors import SessionError

ROOT = Path(__file__).resolve().parent.parent


def tree(path: Path) -> dict:
    """Every file under path with a hash of its bytes."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def lab(tiny_model_dir, tiny_models, tmp_path):
    lab = Lab(tmp_path / "sessions", model_cfg=ModelConfig(model=str(tiny_model_dir), precision="fp32", lora_r=4))
    lab.models, lab.model_cfg = tiny_models, lab.default_model_cfg
    lab.open_session("bad", create=True)
    return lab


def cli(*args, sessions: Path, env_extra=None):
    env = {**os.environ, "RLHF_LAB_SESSIONS": str(sessions), "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "rlhf_lab", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


CLI_CASES = [
    (["generate", "--session", "s", "--prompt", "hi", "-k", "0"], "between 1 and 16"),
    (["generate", "--session", "s", "--prompt", "hi", "-k", "17"], "between 1 and 16"),
    (["generate", "--session", "s", "--prompt", "hi", "--max-new-tokens", "0"], "max_new_tokens"),
    (["generate", "--session", "s", "--prompt", "hi", "--max-new-tokens", "100000"], "max_new_tokens"),
    (["generate", "--session", "s", "--prompt", "hi", "--temperature", "0"], "temperature"),
    (["generate", "--session", "s", "--prompt", "hi", "--temperature", "-1"], "temperature"),
    (["generate", "--session", "s", "--prompt", "   "], "prompt is empty"),
    (["generate", "--session", "../evil", "--prompt", "hi"], "not allowed"),
    (["generate", "--session", "a/b", "--prompt", "hi"], "not allowed"),
    (["generate", "--session", "", "--prompt", "hi"], "not allowed"),
    (["generate", "--session", "s", "--prompt", "hi", "--model", "/no/such/folder"], "does not exist"),
    (["generate", "--session", "s", "--prompt", "hi", "--model", "no-such-org/no-such-model"], "Could not load"),
    (["simulate", "--session", "s", "--judge", "nonsense"], "Unknown judge"),
]


@pytest.mark.parametrize("args,message", CLI_CASES, ids=[" ".join(c[0][3:]) or c[0][0] for c in CLI_CASES])
def test_cli_bad_input(tmp_path, args, message):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    result = cli(*args, sessions=sessions)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and message in last, result.stderr[-2000:]
    assert tree(sessions) == {}


def test_cli_folder_that_is_not_a_model(tmp_path):
    sessions, folder = tmp_path / "sessions", tmp_path / "notamodel"
    sessions.mkdir()
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    result = cli("generate", "--session", "s", "--prompt", "hi", "--model", str(folder), sessions=sessions)
    assert result.returncode == 2 and "not a model folder" in result.stderr
    assert tree(sessions) == {}


def test_cli_malformed_import_file(tmp_path):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\nnot json\n')
    result = cli("import", "--session", "s", "--file", str(bad), sessions=sessions)
    assert result.returncode == 2 and "line 2" in result.stderr
    assert tree(sessions) == {}


def test_lab_prompt_longer_than_context(lab):
    before = tree(lab.sessions_dir)
    with pytest.raises(ConfigError, match="context"):
        list(lab.generate_stream("word " * 400, GenerationConfig(max_new_tokens=10)))
    assert tree(lab.sessions_dir) == before


def test_lab_training_with_fewer_than_two_pairs(lab):
    lab.rank("p", ["a", "b"], [[0], [1]])
    before = tree(lab.sessions_dir)
    with pytest.raises(NotEnoughPairs, match="Only 1 usable pair"):
        lab.train_reward(RewardConfig())
    assert tree(lab.sessions_dir) == before


def test_lab_continuing_a_reward_model_with_another_read_out(lab):
    for i in range(3):
        lab.rank(f"p{i}", ["short.", "long long long"], [[0], [1]])
    list(lab.train_reward(RewardConfig(epochs=1, readout="last")))
    before = tree(lab.sessions_dir)
    with pytest.raises(ConfigError, match="reads the answer at 'last'.*choose 'last' to continue"):
        lab.train_reward(RewardConfig(continue_training=True, readout="last+mean"))
    assert tree(lab.sessions_dir) == before


def test_lab_ppo_without_reward_model(lab):
    before = tree(lab.sessions_dir)
    with pytest.raises(LabError, match="needs a reward model"):
        lab.ppo(2, PPOConfig())
    assert tree(lab.sessions_dir) == before


def test_lab_nan_loss_during_training_keeps_last_good_state(lab, monkeypatch):
    import torch

    from rlhf_lab.algos import reward as reward_trainer

    for i in range(3):
        lab.rank(f"p{i}", ["short.", "long long long"], [[0], [1]])
    before = tree(lab.sessions_dir)
    assert all(p.abs().sum() == 0 for n, p in lab.models.model.named_parameters() if "lora_B.reward" in n)
    real = reward_trainer.bradley_terry_loss
    monkeypatch.setattr(reward_trainer, "bradley_terry_loss",
                        lambda *a, **k: (real(*a, **k)[0] * torch.tensor(float("nan")), real(*a, **k)[1]))
    with pytest.raises(FloatingPointError, match="NaN"):
        list(lab.train_reward(RewardConfig(epochs=1)))
    assert not lab.has_reward_model
    assert tree(lab.sessions_dir) == before
    # Memory is back to an untrained reward model: B matrices and head zero, so every score is 0 again.
    assert all(p.abs().sum() == 0 for n, p in lab.models.model.named_parameters() if "lora_B.reward" in n)
    assert lab.models.reward_head.weight.abs().sum() == 0


def test_lab_second_job_while_one_runs(lab):
    for i in range(3):
        lab.rank(f"p{i}", ["short.", "long long long"], [[0], [1]])
    before = tree(lab.sessions_dir)
    release = threading.Event()

    def long_job():
        yield {"step": 0}
        release.wait(30)

    job = lab.jobs.start("train reward model", long_job)
    try:
        for attempt in (lambda: list(lab.generate_stream("hi", GenerationConfig())),
                        lambda: list(lab.train_reward(RewardConfig())),
                        lambda: lab.open_session("other", create=True)):
            with pytest.raises(LabBusy, match="train reward model"):
                attempt()
        assert lab.rank("p9", ["x.", "y"], [[0], [1]])["id"]  # ranking still works while a job runs
    finally:
        release.set()
        job.done.wait(10)
    after = tree(lab.sessions_dir)
    assert {k for k in after if after[k] != before.get(k)} == {"bad/rankings.jsonl"}


def test_corrupt_line_is_reported_and_left_alone(lab):
    lab.rank("p", ["a.", "b"], [[0], [1]])
    path = lab.session.rankings_path
    with open(path, "a") as f:
        f.write("{broken\n")
    before = tree(lab.sessions_dir)
    assert len(lab.rankings()) == 1
    assert any("line 2" in w for w in lab.warnings)
    assert tree(lab.sessions_dir) == before


def test_bad_rankings_and_orders(lab):
    before = tree(lab.sessions_dir)
    with pytest.raises(RankingInputError):
        from rlhf_lab.data.rankings import parse_order
        parse_order("5>1", 4)
    with pytest.raises(SessionError):
        lab.rank("   ", ["a", "b"], [[0], [1]])
    with pytest.raises(SessionError):
        lab.rank("p", ["a", "b"], [[0], [0]])
    with pytest.raises(SessionError):
        lab.create_session("../escape")
    assert tree(lab.sessions_dir) == before


def test_unknown_model_offline_message():
    with pytest.raises(ModelLoadError, match="offline"):
        from rlhf_lab.modeling.loading import load_base
        load_base(ModelConfig(model="no-such-org/no-such-model"))


@pytest.mark.slow
def test_ui_endpoints_bad_input(tiny_model_dir, tmp_path):
    """The same checks through the running app's endpoints (what the buttons call)."""
    from gradio_client import Client

    from tests.apprun import App

    app = App(tmp_path, session="ui", extra_args=["--model", str(tiny_model_dir), "--precision", "fp32"])
    try:
        app.wait_ready()
        client = Client(app.url, verbose=False)
        before = tree(tmp_path / "ui")
        status = client.predict("   ", 4, 32, 0.8, 0.95, None, api_name="/generate")
        assert any(isinstance(x, str) and "prompt is empty" in x for x in status)
        status = client.predict("hello", 4, 32, 0.8, 0.95, None, api_name="/generate")
        assert not any(isinstance(x, str) and "⚠️" in x for x in status)
        assert "Only 0 usable pair" in client.predict(3, 1e-3, 8, 60, False, "last+mean", api_name="/train_reward")
        message = client.predict(2, 8, 3.0, 6.0, 0.05, True, 1e-4, api_name="/run_ppo")[0]  # (message, progress)
        assert "needs a reward model" in message
        with pytest.raises(Exception, match="no card 5"):
            client.predict("p", ["a", "b", "c", "d"], "5>1", "ranked", api_name="/rank")
        assert tree(tmp_path / "ui") == before
    finally:
        app.stop()
