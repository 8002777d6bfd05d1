"""DPO, SFT and the lineage on a tiny random llama: what each trains (and leaves alone), the versions they save,
SFT -> PPO -> DPO chains, Stop and failures, evaluate --policy, and the CLI's refusals."""
import json
import math
import threading
import time

import pytest
import torch

from rlhf_lab import metrics as M
from rlhf_lab.config import DPOConfig, ModelConfig, PPOConfig, RewardConfig, SFTConfig
from rlhf_lab.errors import TrainingDiverged
from rlhf_lab.lab import Lab, lineage
from rlhf_lab.modeling import checkpoints
from rlhf_lab.modeling.adapters import POLICY
from rlhf_lab.runtime import model_thread as worker
from test_bad_input import cli, tree
from test_training_isolation import changed, reference_logits, snapshot

# 8 epochs: the training margin passes 0.05 from every policy seed tried (0-3: 0.087-0.148); at 4 epochs seed 0
# reached only 0.04 on this random model
FAST_DPO = DPOConfig(epochs=8, learning_rate=5e-2, batch_rankings=2)
FAST_SFT = SFTConfig(epochs=6, learning_rate=5e-2)


@pytest.fixture
def lab(tiny_lab_factory):
    return tiny_lab_factory()


def rank_some(lab, n=6):
    for i in range(n):
        lab.rank(f"prompt {i}", [f"good answer {i}.", f"bad {i} " * 5, f"worse {i}"], [[0], [1], [2]])


def write_templated_demonstrations(lab, n=16):
    """A stand-in for a judge that writes its favourite answer from a template: on a random model, sampled
    answers are noise, so the demonstrations share a form the held-out ones can be checked against."""
    topics = ["rain", "tea", "maps", "owls", "salt", "jazz", "ice", "kites", "bread", "moss", "glass", "sand",
              "wool", "clay", "ink", "fog"]
    for topic in topics[:n]:
        lab.demonstrate(f"Tell me about {topic}.", f"In short: {topic} is simple. That is all.",
                        shown=[f"{topic} {topic} um", "no idea"], annotator="judge:template")


def policy_weights(lab):
    return worker.call(lambda: [p.detach().clone() for p in lab.models.trainable_params(POLICY)])


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_dpo_trains_only_the_policy_lora_and_saves_a_version_with_lineage(lab):
    rank_some(lab)
    before, ref_before = snapshot(lab.models), worker.call(reference_logits, lab.models)
    rows = list(lab.dpo(FAST_DPO))
    summary = rows[-1]
    diff = changed(before, snapshot(lab.models))
    assert diff and all(f".{POLICY}." in n and "lora_" in n for n in diff), diff  # not the value or reward head
    assert torch.equal(ref_before, worker.call(reference_logits, lab.models))  # the reference never moves
    steps = [r for r in rows if M.DPO_LOSS in r]
    assert steps[0][M.REWARDS_MARGINS] == 0.0 and steps[0][M.DPO_LOSS] == pytest.approx(0.6931, abs=1e-4)
    assert max(r[M.REWARDS_MARGINS] for r in steps[-3:]) > 0.05
    # Held out: measured from exactly 0. Whether it rises on a tiny random model's word salad turns on the
    # adapter's start (it came out -0.005 in one suite order); test_dpo_real asserts the rise on the real model.
    assert summary["start/" + M.EVAL_DPO_MARGINS] == 0.0 and math.isfinite(summary[M.EVAL_DPO_MARGINS])
    assert summary["pairs_eval"] >= 3 and summary["held_out"]
    assert summary["policy_version"] == "v001" and not summary["stopped"]
    info = json.loads((lab.session.adapter_dir("policy") / "v001" / "info.json").read_text())
    assert info["algorithm"] == "dpo" and info["parent"] == "base" and info["round"] == 1
    assert info["data"] == {"rankings": 6, "round": 0, "pairs": 18, "demonstrations": 0}
    assert info["config"]["beta"] == 0.1 and info["config"]["loss_type"] == "sigmoid"
    meta = lab.meta()
    assert meta.policy_version == "v001" and meta.round == 1
    logged = [r for r in lab.session.metrics()[0] if r.get("phase") == "dpo"]
    assert len(logged) == len(rows) - 1 and all("progress" not in r and r["round"] == 1 for r in logged)


def test_ipo_runs_on_mean_log_probs(lab):
    rank_some(lab, 4)
    rows = list(lab.dpo(DPOConfig(loss_type="ipo", epochs=1, learning_rate=1e-2)))
    first = next(r for r in rows if M.DPO_LOSS in r)
    # Before any step h = 0, so the IPO loss is (0 - 1 / (2 beta))^2 = 25 at beta 0.1.
    assert first[M.DPO_LOSS] == pytest.approx(25.0, abs=1e-3)
    assert -12 < first[M.LOGPS_CHOSEN] < -8  # a per-token mean near log(1/49152): not a sum over the answer


def test_sft_on_written_demonstrations_raises_their_held_out_likelihood(tiny_model_dir, tmp_path):
    # Fresh models: what earlier tests left in the shared ones' LoRA A matrices would change how far SFT gets.
    from rlhf_lab.modeling.adapters import load_lab_models

    cfg = ModelConfig(model=str(tiny_model_dir), precision="fp32", lora_r=4)
    lab = Lab(tmp_path / "sessions", model_cfg=cfg)
    lab.models, lab.model_cfg = worker.call(load_lab_models, cfg, 4), cfg
    lab.open_session("s", create=True)
    write_templated_demonstrations(lab)
    before = snapshot(lab.models)
    rows = list(lab.sft(FAST_SFT))
    summary = rows[-1]
    assert summary["demonstrations_eval"] >= 3 and summary["held_out"]
    # A few nats per held-out answer: the random model's tied embeddings are so small (std 0.02, width 32) that
    # no adapter can raise a token's logit by much more than half a nat; the real model's test asks for more.
    assert summary[M.EVAL_DEMO_LOGPS] > summary["start/" + M.EVAL_DEMO_LOGPS] + 1.0, summary
    assert summary[M.held_out(M.SFT_LOSS)] < summary["start/" + M.held_out(M.SFT_LOSS)]
    diff = changed(before, snapshot(lab.models))
    assert diff and all(f".{POLICY}." in n and "lora_" in n for n in diff)
    info = json.loads((lab.session.adapter_dir("policy") / "v001" / "info.json").read_text())
    assert info["algorithm"] == "sft" and info["data"]["demonstrations"] == 16


def test_sft_then_ppo_then_dpo_chain_records_each_parent_and_reopens(tiny_lab_factory):
    lab = tiny_lab_factory()
    write_templated_demonstrations(lab, 8)
    assert list(lab.sft(SFTConfig(epochs=2, learning_rate=5e-2)))[-1]["policy_version"] == "v001"
    rank_some(lab)
    list(lab.train_reward(RewardConfig(epochs=1, batch_rankings=2)))
    ppo = list(lab.ppo(1, PPOConfig(batch_size=2, num_mini_batches=1, max_new_tokens=4, num_ppo_epochs=1)))
    assert ppo[-1]["policy_version"] == "v002"
    rows = list(lab.dpo(DPOConfig(epochs=1, learning_rate=1e-2)))
    # DPO started from the PPO version, not from the base: before its first step the policy already differs
    # from the reference (adapters off), so the implicit rewards are not zero.
    assert rows[0]["step"] == 0 and rows[0][M.held_out(M.REWARDS_CHOSEN)] != 0.0
    versions = lab.versions()
    assert [(v["version"], v["algorithm"], v["parent"], v["round"]) for v in versions] == [
        ("base", None, None, 0), ("v001", "sft", "base", 1), ("v002", "ppo", "v001", 2), ("v003", "dpo", "v002", 3)]
    assert versions[-1]["current"] and not any(v["current"] for v in versions[:-1])
    ppo_info = lineage.read_info(lab.session, "v002")
    assert ppo_info["steps"] == 1 and ppo_info["data"]["rankings"] == 6 and ppo_info["config"]["batch_size"] == 2
    assert versions[1]["data"]["demonstrations"] == 8
    in_memory = policy_weights(lab)
    lab.session = None
    again = tiny_lab_factory()  # reopening loads the current version, v003
    assert again.meta().policy_version == "v003" and same(in_memory, policy_weights(again))


def test_evaluate_a_chosen_version_then_the_current_one_comes_back(lab):
    write_templated_demonstrations(lab, 4)
    list(lab.sft(SFTConfig(epochs=1, learning_rate=5e-2)))
    list(lab.sft(SFTConfig(epochs=1, learning_rate=5e-2)))
    current = policy_weights(lab)
    cfg = PPOConfig(batch_size=2, num_mini_batches=1, max_new_tokens=4)
    newest = lab.evaluate("concise", 2, cfg)
    assert newest["policy"] == "v002"
    for version in ("v001", "base"):
        result = lab.evaluate("concise", 2, cfg, policy=version)
        assert result["policy"] == version and same(current, policy_weights(lab))
    base = lab.evaluate("concise", 2, cfg, policy="base")
    assert base["kl"] == pytest.approx(0.0, abs=1e-5)  # the base is the reference
    with pytest.raises(Exception, match="no policy version 'v009'"):
        lab.evaluate("concise", 2, cfg, policy="v009")


def test_stop_keeps_the_whole_steps_and_saves_them(lab):
    rank_some(lab, 12)
    job = lab.dpo(DPOConfig(epochs=100, learning_rate=1e-2, batch_rankings=1), inline=False)
    while job.running and not any(M.DPO_LOSS in r for r in job.rows):
        time.sleep(0.05)
    assert lab.stop()
    assert job.done.wait(60) and job.error is None
    result = job.result
    assert result["stopped"] and 1 <= result["step"] < 100 * 10
    assert result["policy_version"] == "v001"
    saved = lineage.read_info(lab.session, "v001")
    assert saved["summary"]["stopped"] is True and saved["summary"]["step"] == result["step"]
    in_memory = policy_weights(lab)
    worker.call(checkpoints.load_adapter, lab.models, POLICY, lab.session.adapter_dir("policy") / "v001")
    assert same(in_memory, policy_weights(lab))  # what was saved is what is in memory


def test_a_failed_run_puts_the_policy_back_and_saves_nothing(lab, monkeypatch, tmp_path):
    rank_some(lab)
    from rlhf_lab.lab import dpo as dpo_workflow

    def diverging(models, pairs, cfg, stop_event):
        with torch.no_grad():
            for p in models.lora_params(POLICY):
                p.add_(1.0)
        yield {"phase": "dpo", "step": 1, "epoch": 0, M.DPO_LOSS: 0.5}
        raise TrainingDiverged("The DPO loss became NaN/inf")

    monkeypatch.setattr(dpo_workflow, "train_dpo", diverging)
    before, meta = policy_weights(lab), lab.meta()
    with pytest.raises(TrainingDiverged):
        list(lab.dpo())
    assert same(before, policy_weights(lab))
    assert not lab.session.adapter_dir("policy").exists() and lab.meta().policy_version == meta.policy_version


def test_a_stop_during_the_reference_pass_trains_and_saves_nothing(lab):
    from rlhf_lab.algos.dpo import train_dpo
    from rlhf_lab.errors import Stopped

    rank_some(lab, 4)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        worker.call(lambda: next(train_dpo(lab.models, lab.pairs(), DPOConfig(), stop)))
    before = policy_weights(lab)
    job = lab.dpo(DPOConfig(), inline=False)
    lab.stop()  # at once: the job is scoring the answers under the reference, or about to take its first step
    assert job.done.wait(60) and job.error is None and job.result["stopped"] and job.result["step"] == 0
    assert "policy_version" not in job.result and not lab.session.adapter_dir("policy").exists()
    assert same(before, policy_weights(lab)) and lab.meta().policy_version == "base"


def test_next_version_never_reuses_a_name_set_aside(lab):
    folder = lab.session.adapter_dir("policy")
    for name in ("v001", "v002"):
        worker.call(checkpoints.save_adapter, lab.models, POLICY, folder / name, {})
    checkpoints.set_aside(folder / "v001")
    assert lineage.next_version(lab.session) == "v003"


def test_cached_answer_log_probs_equal_a_whole_model_pass(split_models):
    """Through the trunk cache (split after layer 2, answers right-aligned in a left-padded batch) the answer
    tokens get exactly the log-probs a plain forward of the whole model gives them."""
    from rlhf_lab.algos.answers import AnswerCache, answer_logps, encode_answers
    from rlhf_lab.algos.rl_math import logprobs_from_logits

    m = split_models
    keys = [("Say hi.", "Hello there, friend.", True), ("Longer prompt with more words in it", "ok", False)]

    def run():
        m.use(POLICY)
        with torch.no_grad():
            for p in m.lora_params(POLICY, "lora_B"):
                p.normal_(std=0.05)  # a policy that differs from the base
            trunk, answer_mask = AnswerCache(m, 256, 192).batch(keys)
            got, mask, _ = answer_logps(m, trunk, answer_mask)
            ids, attn, answers = encode_answers(m.tokenizer, keys, m.device, 256, 192)
            positions = (attn.cumsum(-1) - 1).clamp(min=0)
            logits = m.model(input_ids=ids, attention_mask=attn, position_ids=positions).logits.float()
            want = logprobs_from_logits(logits[:, :-1], ids[:, 1:])
            m.reset_policy()
        return got, mask, want, answers[:, 1:]

    assert worker.call(lambda: m.cut) == 2
    got, mask, want, answers = worker.call(run)
    for row in range(2):
        expected = want[row][answers[row].bool()]
        assert torch.allclose(got[row][mask[row].bool()], expected, atol=1e-4), row


# ---- the CLI refuses before any model loads and writes nothing ---------------------------------------------

def test_cli_refuses_dpo_and_sft_without_data_and_lists_versions(lab, tmp_path):
    lab.rank("tie", ["x", "y"], [[0, 1]])
    sessions = lab.sessions_dir
    before = tree(sessions)
    for args, message in ((["dpo", "--session", "s"], "no preference pairs"),
                          (["sft", "--session", "s"], "no demonstrations"),
                          (["demonstrate", "--session", "s", "--prompt", "Q"], "--answer"),
                          (["dpo", "--session", "s", "--loss", "hinge"], "invalid choice")):
        result = cli(*args, sessions=sessions)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr[-800:])
    assert tree(sessions) == before
    result = cli("versions", "--session", "s", sessions=sessions)
    assert result.returncode == 0
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        {"version": "base", "algorithm": None, "parent": None, "round": 0, "current": True}]
    result = cli("demonstrate", "--session", "s", "--prompt", "Say hi.", "--answer", "Hi!", sessions=sessions)
    assert result.returncode == 0 and json.loads(result.stdout)["demonstrations"] == 1
    assert [d["completion"] for d in lab.demonstrations()] == ["Hi!"]
