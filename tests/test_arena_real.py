"""A judge arena on the embedded SmolLM2-135M (4-bit): base against a version trained by a few PPO steps."""
import pytest
import torch

from rlhf_lab.algos.ppo import new_state, ppo_step
from rlhf_lab.config import GenerationConfig, PPOConfig
from rlhf_lab.data.prompts import sample_prompts
from rlhf_lab.modeling import checkpoints
from rlhf_lab.modeling.adapters import POLICY
from rlhf_lab.runtime import model_thread as worker
from tests.test_real_model import starts_with_the

pytestmark = pytest.mark.slow
JUDGE = "tests.test_real_model:starts_with_the"  # 1 if the answer's first word is "The": learnable in a few steps


def test_judge_arena_base_vs_trained_version(real_lab_factory, tmp_path):
    lab = real_lab_factory(tmp_path)
    lab.open_session("arena", create=True)
    m = lab.models

    def train_v001():
        m.reset_policy()
        cfg = PPOConfig(batch_size=8, max_new_tokens=8, num_ppo_epochs=2, learning_rate=2e-3, kl_coef=0.01,
                        missing_eos_penalty=0.0, max_kl=0)  # a policy that moved far: no KL limit to stop it
        state = new_state(m, cfg)
        prompts = sample_prompts(8, seed=11)
        scorer = lambda r: torch.tensor([starts_with_the(p, t) for p, t in zip(r.prompts, r.texts)])  # noqa: E731
        for i in range(8):
            ppo_step(m, prompts, cfg, state, seed=100 + i, scorer=scorer)
        checkpoints.save_adapter(m, POLICY, lab.session.adapter_dir("policy") / "v001", {"algorithm": "ppo"})
        return [p.detach().clone() for p in m.trainable_params(POLICY)]

    try:
        trained = worker.call(train_v001)
        lab.session.update_meta(policy_version="v001", round=1)
        rows = list(lab.run_arena(JUDGE, ["base", "v001"], 16, GenerationConfig(max_new_tokens=8), seed=3))
        assert rows[-1]["summary"] and rows[-1]["votes"] == 16 and not rows[-1]["stopped"]
        # The session's policy (v001, in memory) is back in the slot after sampling base and v001.
        assert all(torch.equal(a, b) for a, b in zip(trained, m.trainable_params(POLICY)))

        votes = lab.votes(f"judge:{JUDGE}")
        assert len(votes) == 16
        assert sum(v["a"]["version"] == "v001" for v in votes) not in (0, 16)  # A/B order is shuffled
        board = lab.leaderboard(f"judge:{JUDGE}")
        by = {r["version"]: r for r in board["leaderboard"]}
        assert set(by) == {"base", "v001"} and by["base"]["rating"] == 1000.0
        # The tallies are the judge's verdicts on the stored answers, seen from v001's side.
        won = sum((v["verdict"] == "A") == (v["a"]["version"] == "v001") for v in votes if v["verdict"] != "tie")
        assert (by["v001"]["wins"], by["v001"]["ties"]) == (won, sum(v["verdict"] == "tie" for v in votes))
        assert by["v001"]["ci_low"] <= by["v001"]["rating"] <= by["v001"]["ci_high"]
        # The trained version answers "The ..." more often, so the judge prefers it.
        starts = {ver: sum(starts_with_the(v["prompt"], v[s]["text"]) for v in votes for s in "ab"
                           if v[s]["version"] == ver) for ver in ("base", "v001")}
        assert starts["v001"] > starts["base"], starts
        assert by["v001"]["rating"] > 1000.0 and by["v001"]["wins"] > by["v001"]["losses"], board
        print(board["leaderboard"], starts)
    finally:
        worker.call(m.reset_policy)
