"""The arena workflow on a tiny random llama: blind matches, votes on disk with the hidden assignment, undo,
bad input that changes nothing, the judge autopilot with Stop, the policy restored, and the CLI."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlhf_lab.config import GenerationConfig, ModelConfig
from rlhf_lab.data import votes as store
from rlhf_lab.errors import JudgeError, LabError, SessionError, Stopped
from rlhf_lab.lab import Lab
from rlhf_lab.lab import arena as arena_flow
from rlhf_lab.modeling import checkpoints
from rlhf_lab.modeling.adapters import POLICY
from rlhf_lab.runtime import model_thread

ROOT = Path(__file__).resolve().parent.parent
CFG = GenerationConfig(max_new_tokens=6)


def tree(path: Path) -> dict:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def policy_state(lab):
    return [p.detach().clone() for p in lab.models.trainable_params(POLICY)]


def perturb_policy(lab, seed):
    def go():
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in lab.models.lora_params(POLICY, "lora_B"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    model_thread.call(go)


def save_version(lab, version):
    model_thread.call(checkpoints.save_adapter, lab.models, POLICY, lab.session.adapter_dir("policy") / version,
                      {"algorithm": "test"})


@pytest.fixture
def lab(tiny_model_dir, tiny_models, tmp_path):
    """A session with v001 (a perturbed policy) and, as the current policy in memory, another perturbation."""
    lab = Lab(tmp_path / "sessions", model_cfg=ModelConfig(model=str(tiny_model_dir), precision="fp32", lora_r=4))
    lab.models, lab.model_cfg = tiny_models, lab.default_model_cfg
    lab.open_session("a", create=True)
    perturb_policy(lab, 1)
    save_version(lab, "v001")
    perturb_policy(lab, 2)
    yield lab
    model_thread.call(lab.models.reset_policy)


def same(xs, ys):
    return all(torch.equal(x, y) for x, y in zip(xs, ys))


def test_match_is_blind_vote_reveals_and_is_stored_with_the_assignment(lab):
    before = policy_state(lab)
    match = lab.draw_match(["base", "v001"], "Say hi.", CFG, seed=3)
    assert set(match) == {"match", "prompt", "a", "b", "a_truncated", "b_truncated"}  # no versions shown
    assert same(before, policy_state(lab))  # the current policy is back in the slot
    assert lab.open_match()["match"] == match["match"]
    reveal = lab.vote(match["match"], "A")
    assert {reveal["a"], reveal["b"]} == {"base", "v001"} and reveal["verdict"] == "A"
    [rec] = lab.votes()
    assert rec["id"] == match["match"] and rec["prompt"] == "Say hi." and rec["annotator"] == "human"
    assert rec["a"]["version"] == reveal["a"] and rec["a"]["text"] == match["a"] and rec["b"]["text"] == match["b"]
    assert isinstance(rec["a"]["tokens"], int) and rec["verdict"] == "A"
    assert lab.open_match() is None
    board = lab.leaderboard()
    assert board["votes"] == 1 and {r["version"] for r in board["leaderboard"]} == {"base", "v001"}
    undone = lab.undo_vote("human")
    assert undone["id"] == rec["id"] and lab.votes() == []
    lines = [json.loads(x) for x in store.votes_path(lab.session.root).read_text().splitlines()]
    assert lines[0]["id"] == rec["id"] and lines[1]["retracts"] == rec["id"]  # append-only


def test_equal_versions_answer_alike_and_versions_differ(lab):
    """Both sides share a seed: v002 (a zero adapter, equal to base) gives base's answer; v001 differs."""
    model_thread.call(lab.models.reset_policy)
    save_version(lab, "v002")  # zero LoRA: the base model
    out = model_thread.call(arena_flow.sample_version, lab.models, None, ["One", "Two"], CFG, 11)
    zero = model_thread.call(arena_flow.sample_version, lab.models, lab.session.adapter_dir("policy") / "v002",
                             ["One", "Two"], CFG, 11)
    other = model_thread.call(arena_flow.sample_version, lab.models, lab.session.adapter_dir("policy") / "v001",
                              ["One", "Two"], CFG, 11)
    assert [o["text"] for o in out] == [z["text"] for z in zero]
    assert [o["text"] for o in out] != [o["text"] for o in other]


def test_bad_input_changes_nothing(lab):
    match = lab.draw_match(None, None, CFG, seed=1)
    before = tree(lab.sessions_dir)
    with pytest.raises(SessionError, match="one of A, B, tie, both_bad"):
        lab.vote(match["match"], "C")
    with pytest.raises(LabError, match="no longer open"):
        lab.vote("nosuchmatch", "A")
    with pytest.raises(LabError, match="no policy version v009"):
        lab.draw_match(["base", "v009"], "hi", CFG)
    with pytest.raises(LabError, match="at least two versions"):
        lab.draw_match(["base", "base"], "hi", CFG)
    with pytest.raises(LabError, match="at most 2,000"):
        lab.draw_match(None, "why? " * 1000, CFG)
    with pytest.raises(SessionError, match="Nothing to undo"):
        lab.undo_vote()
    with pytest.raises(JudgeError):
        lab.run_arena("nonsense", None, 2, CFG)
    with pytest.raises(LabError, match="between 1 and 10000"):
        lab.run_arena("concise", None, 0, CFG)
    with pytest.raises(LabError, match="100 and 10000"):
        lab.leaderboard(rounds=5)
    assert tree(lab.sessions_dir) == before
    lab.vote(match["match"], "both_bad")  # the match is still open after the refused votes
    with pytest.raises(LabError, match="no longer open"):
        lab.vote(match["match"], "A")  # but a match takes one vote


def test_a_torn_or_wrong_line_in_votes_is_skipped_and_reported(lab):
    match = lab.draw_match(None, "hi", CFG, seed=2)
    lab.vote(match["match"], "B")
    path = store.votes_path(lab.session.root)
    with open(path, "a") as f:
        f.write(json.dumps({"id": "bad", "prompt": "p", "a": {"version": "base", "text": "x"},
                            "b": {"version": "base", "text": "y"}, "verdict": "A"}) + "\n")
        f.write('{"id": "torn", "prom')
    board = lab.leaderboard()
    assert board["votes"] == 1
    assert any("line 2" in w and "same version" in w for w in board["warnings"])
    assert any("last line was incomplete" in w for w in board["warnings"])


def test_judge_autopilot_votes_and_restores_the_policy(lab):
    before = policy_state(lab)
    rows = list(lab.run_arena("concise", ["base", "v001"], 5, CFG, seed=4))
    assert rows[-1]["summary"] and rows[-1]["votes"] == 5 and not rows[-1]["stopped"]
    assert same(before, policy_state(lab))
    votes = lab.votes("judge:concise")
    assert len(votes) == 5 and lab.votes("human") == []
    from rlhf_lab.judges import concise
    for v in votes:
        sa, sb = concise(v["prompt"], v["a"]["text"]), concise(v["prompt"], v["b"]["text"])
        assert v["judge_scores"] == [sa, sb]
        assert v["verdict"] == ("A" if sa > sb else "B" if sb > sa else "tie")
    assert {v["a"]["version"] for v in votes} <= {"base", "v001"} and all(
        v["a"]["version"] != v["b"]["version"] for v in votes)
    board = lab.leaderboard("judge:concise", rounds=100)
    assert board["votes"] == 5 and board["annotator"] == "judge:concise"
    assert lab.voters() == ["judge:concise"]


def test_autopilot_stop_keeps_whole_chunks_only(lab, monkeypatch):
    monkeypatch.setattr(arena_flow, "AUTOPILOT_ROWS", 2)
    real, calls = arena_flow.sample_version, []

    def stopping(models, folder, prompts, cfg, seed, stop_event=None):
        calls.append(folder)
        if len(calls) == 3:  # the second chunk's first version
            raise Stopped("generation stopped")
        return real(models, folder, prompts, cfg, seed, stop_event)

    monkeypatch.setattr(arena_flow, "sample_version", stopping)
    before = policy_state(lab)
    rows = list(lab.run_arena("concise", ["base", "v001"], 6, CFG, seed=5))
    assert rows[-1]["stopped"] and rows[-1]["votes"] == 2
    assert len(lab.votes()) == 2 and same(before, policy_state(lab))
    assert lab.jobs.current is None


def test_answer_scores_and_the_rankings_table(lab):
    lab.rank("p", ["good", "ok", "bad"], [[0], [1], [2]])
    lab.rank("q", ["x", "y"], [], verdict="all_bad")
    scores = lab.answer_scores()
    [rid] = list(scores)
    assert scores[rid][0] > scores[rid][1] > scores[rid][2]
    from rlhf_lab.ui.rankings_table import rankings_table
    df = rankings_table(lab, {})
    assert list(df["BT"]) == ["", scores[rid][0]]  # newest first; all-bad has no scores


def cli(*args, sessions: Path):
    env = {**os.environ, "RLHF_LAB_SESSIONS": str(sessions), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "rlhf_lab", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_leaderboard_of_stored_votes_and_bad_arguments(lab):
    for verdict in ("A", "B", "A", "tie"):
        match = lab.draw_match(["base", "v001"], None, CFG)
        lab.vote(match["match"], verdict)
    before = tree(lab.sessions_dir)
    out = cli("arena", "--session", "a", "--rounds", "100", sessions=lab.sessions_dir)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["votes"] == 4 and len(result["leaderboard"]) == 2
    for row in result["leaderboard"]:
        assert {"version", "rating", "ci_low", "ci_high", "wins", "losses", "ties"} <= set(row)
        assert row["ci_low"] <= row["rating"] <= row["ci_high"]
    assert sum(r["wins"] for r in result["leaderboard"]) == 3
    human = json.loads(cli("arena", "--session", "a", "--judge", "human", sessions=lab.sessions_dir)
                       .stdout.strip().splitlines()[-1])
    assert human["votes"] == 4 and human["annotator"] == "human"
    for args, message in ((["--judge", "concise", "--versions", "base"], "at least two different versions"),
                          (["--judge", "nonsense"], "Unknown judge"),
                          (["--judge", "concise", "--prompts", "0"], "between 1 and 10000"),
                          (["--rounds", "3"], "100 and 10000")):
        bad = cli("arena", "--session", "a", *args, sessions=lab.sessions_dir)
        assert bad.returncode == 2 and message in bad.stderr.strip().splitlines()[-1], bad.stderr
    assert tree(lab.sessions_dir) == before
