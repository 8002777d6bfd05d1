"""Kill the real app process mid-work: every acknowledged ranking survives and the session reopens."""
import json
import threading
import time

import pytest

from rlhf_lab.modeling import checkpoints
from tests.apprun import App

pytestmark = [pytest.mark.slow, pytest.mark.faults]


def records(sessions_dir, name="e2e"):
    path = sessions_dir / name / "rankings.jsonl"
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a torn last line is allowed; acknowledged records must all parse
    return out


def test_sigkill_during_ranking_burst_and_training_loses_nothing(tmp_path):
    from gradio_client import Client

    app = App(tmp_path)
    acked: list[str] = []
    try:
        app.wait_ready()
        client = Client(app.url, verbose=False)
        errors = []

        def burst():
            i = 0
            while True:
                try:
                    out = client.predict(f"prompt {i % 7}", [f"short answer {i}.", f"a much longer answer {i} " * 4],
                                         "1>2", "ranked", api_name="/rank")
                except Exception as err:  # the server died under us: stop
                    errors.append(err)
                    return
                acked.append(out["saved"])
                i += 1

        worker = threading.Thread(target=burst, daemon=True)
        worker.start()
        deadline = time.time() + 60
        while len(acked) < 25 and time.time() < deadline:
            time.sleep(0.05)
        assert len(acked) >= 25, errors
        app.kill()  # SIGKILL mid-burst
        worker.join(timeout=30)
        on_disk = {r["id"] for r in records(tmp_path)}
        assert set(acked) <= on_disk, f"lost {set(acked) - on_disk}"

        # Restart, train, and kill during training.
        app = App(tmp_path)
        app.wait_ready()
        client = Client(app.url, verbose=False)
        assert client.predict(api_name="/counts")["rankings"] >= len(acked)
        client.predict(3, 1e-3, 8, 60, False, "last+mean", api_name="/train_reward")
        time.sleep(6)
        app.kill()
        reward_dir = tmp_path / "e2e" / "adapters" / "reward"
        # Either no reward model or a complete one: never a half-written folder in its place.
        assert not reward_dir.exists() or checkpoints.is_complete(reward_dir)

        app = App(tmp_path)
        app.wait_ready()
        client = Client(app.url, verbose=False)
        assert client.predict(api_name="/counts")["rankings"] >= len(acked)
        assert set(acked) <= {r["id"] for r in records(tmp_path)}
    finally:
        app.stop()


def test_stop_mid_ppo_leaves_consistent_loadable_version(real_lab_factory, tmp_path):
    from rlhf_lab.config import PPOConfig, RewardConfig

    lab = real_lab_factory(tmp_path)
    lab.open_session("stopme", create=True)
    lab.rank("Say hi.", ["Hi!", "Hello there, it is a pleasure to greet you today my friend"], [[0], [1]])
    lab.rank("Name a color.", ["Blue.", "There are many colors, for example the color that is"], [[0], [1]])
    list(lab.train_reward(RewardConfig(epochs=1, max_seconds=30)))
    job = lab.ppo(3, PPOConfig(batch_size=4, max_new_tokens=16, num_ppo_epochs=2), inline=False)
    while not job.rows and job.running:  # let one step finish, then stop during the second
        time.sleep(0.2)
    time.sleep(1.0)
    lab.stop()
    job.done.wait(120)
    assert job.error is None and job.result["stopped"] is True
    assert job.result["steps"] >= 1 and job.result["policy_version"] == "v001"
    folder = lab.session.adapter_dir("policy") / "v001"
    assert checkpoints.is_complete(folder)
    assert json.loads((folder / "info.json").read_text())["steps"] == job.result["steps"]
    # The saved version loads, and it is what is in memory.
    name = lab.session.name
    before = [p.detach().clone() for p in lab.models.adapter_params("policy")]
    lab.session = None
    lab.open_session(name)
    after = lab.models.adapter_params("policy")
    assert all((a - b).abs().max().item() == 0 for a, b in zip(before, after))
