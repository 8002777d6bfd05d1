"""Workshop mode on a tiny random llama: autopilot as a background job with Stop, a scenario's whole loop
headless, the story, and the run report (self-contained, escaped)."""
import dataclasses
import json
import re
import time

import pytest

from rlhf_lab import judges, scenarios
from rlhf_lab.config import ConfigError, GenerationConfig, ModelConfig
from rlhf_lab.lab import Lab


def longer(prompt: str, completion: str) -> float:
    """A judge random tiny-model text can satisfy: more characters is better."""
    return float(len(completion))


@pytest.fixture
def lab(tiny_model_dir, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setitem(judges.BUILTIN, "longer", longer)
    lab = Lab(tmp_path / "sessions", model_cfg=ModelConfig(model=str(tiny_model_dir), precision="fp32", lora_r=4))
    lab.models, lab.model_cfg = tiny_models, lab.default_model_cfg
    lab.open_session("ws", create=True)
    return lab


def wait(job, seconds=120):
    assert job.done.wait(seconds), "the job did not end"
    return job


def test_every_scenario_names_a_judge_and_enough_prompts():
    assert scenarios.names() == ["concise", "cheerful", "no_lists", "mention_you"]
    for s in scenarios.SCENARIOS:
        judges.get_judge(s.judge)
        prompts = s.prompts()
        assert len(prompts) >= 30 and len(set(prompts)) == len(prompts), s.name
        assert all(len(p) < 120 and not p.startswith("#") for p in prompts)
        assert s.generation.k == s.k and s.reward.max_seconds == s.reward_seconds
    with pytest.raises(ConfigError, match="Unknown scenario 'nope'.*concise"):
        scenarios.get("nope")


def test_autopilot_job_ranks_with_the_judge_and_shows_progress(lab):
    prompts = ["first question", "second question", "third question"]
    job = lab.simulate("longer", 3, GenerationConfig(k=2, max_new_tokens=6), seed=3, prompts=prompts,
                       inline=False)
    assert lab.jobs.current is job or job.done.is_set()
    wait(job)
    assert job.error is None and job.result["summary"] and job.result["stopped"] is False
    rows = [r for r in job.rows if not r.get("summary")]
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[-1]["progress"] == 1.0
    assert sorted(r["prompt"] for r in rows) == sorted(prompts) and all(len(r["texts"]) == 2 for r in rows)
    records = lab.rankings()
    assert len(records) == 3 and {r["annotator"] for r in records} == {"judge:longer"}
    for rec in records:  # the judge's order: the longer answer first (ties share a group)
        best = rec["ranking"][0][0]
        assert len(rec["completions"][best]) == max(map(len, rec["completions"]))
    assert lab.counts()["rankings"] == 3


def test_autopilot_stop_keeps_what_was_ranked_and_adds_nothing(lab):
    job = lab.simulate("longer", 40, GenerationConfig(k=2, max_new_tokens=200), prompts=["q"] * 40, inline=False)
    assert lab.stop()
    wait(job)
    assert job.error is None and job.result["stopped"] is True
    assert lab.rankings() == [] and lab.jobs.current is None


def test_autopilot_refuses_bad_input_before_a_job(lab):
    with pytest.raises(Exception, match="Unknown judge"):
        lab.simulate("nonsense", 2, inline=False)
    with pytest.raises(Exception, match="between 1 and 10000"):
        lab.simulate("longer", 0, inline=False)
    assert lab.jobs.current is None and lab.rankings() == []


@pytest.fixture
def tiny_scenario(monkeypatch):
    """`concise` resized for the tiny model, ranked by the `longer` judge."""
    small = dataclasses.replace(scenarios.get("concise"), judge="longer", n_prompts=6, k=3, max_new_tokens=8,
                                reward_seconds=30, algorithm="ppo", ppo_steps=2, eval_prompts=3)
    monkeypatch.setattr(scenarios, "SCENARIOS", (small,) + scenarios.SCENARIOS[1:])
    return small


def test_scenario_runs_the_whole_loop_and_the_report_tells_it(lab, tiny_scenario, tmp_path):
    rows = list(lab.run_scenario("concise"))
    summary = rows[-1]
    assert summary["summary"] and "stage" not in summary
    assert [s for s in dict.fromkeys(r["stage"] for r in rows[:-1])] == ["autopilot", "reward", "ppo"]
    assert summary["rankings"] == 6 and summary["ppo_steps"] == 2 and summary["policy"] == "v001"
    assert set(summary["seconds"]) == {"autopilot", "reward", "ppo", "evaluate", "total"}
    for key in ("eval/reward_accuracy", "policy_score", "reference_score", "kl", "first/objective/gold_scores"):
        assert summary[key] is not None, key
    assert lab.meta().extra["scenario"] == "concise"
    assert {r["prompt"] for r in lab.rankings()} <= set(tiny_scenario.prompts())

    lines = lab.story()
    assert lines[0].startswith("The judge “longer” ranked answers to 6 prompts")
    assert any(x.startswith("Your reward model agrees with the judge") for x in lines)
    from rlhf_lab.ui.reward_tab import result_text
    assert result_text(lab).startswith("**Your reward model agrees with the judge “longer” on ")
    assert any(x.startswith("PPO ") and "nats" in x for x in lines)
    assert any(x.startswith("On 3 fresh samples the judge “longer”") for x in lines[-2:])

    # An answer that is HTML must arrive as text: the latest evaluation holds one.
    bad = "<script>window.__xss=1</script><img src=x onerror=alert(1)>"
    path = lab.session.root / "evaluations.jsonl"
    last = json.loads(path.read_text().splitlines()[-1])
    last["examples"][0]["policy"] = bad
    with open(path, "a") as f:
        f.write(json.dumps(last) + "\n")
    out = tmp_path / "report.html"
    info = lab.report(out)
    text = out.read_text()
    # the file's bytes as written (read_text turns a "\r" in a model's answer into "\n" and one byte fewer)
    assert info["bytes"] == len(out.read_bytes()) and info["evaluation"] and not info["leaderboard"]
    assert bad not in text and "&lt;script&gt;window.__xss=1&lt;/script&gt;" in text
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=\s*['\"]?(https?:)?//", text, re.I)
    assert text.count("Plotly.newPlot") == 2  # the reward-model and PPO plots, plotly.js inlined once
    assert "Reward model" in text and "Before and after" in text and "concise" in text


def test_a_reward_model_cut_short_by_its_time_budget_says_so(lab, tiny_scenario, monkeypatch):
    # A clock that moves one second per reading: the budget ends training at the same point on every machine.
    from types import SimpleNamespace
    from rlhf_lab.algos import reward as R
    clock = iter(range(1, 10**6))
    monkeypatch.setattr(R, "time", SimpleNamespace(monotonic=lambda: float(next(clock))))
    monkeypatch.setattr(scenarios, "SCENARIOS", (dataclasses.replace(tiny_scenario, reward_seconds=3),)
                        + scenarios.SCENARIOS[1:])
    summary = list(lab.run_scenario("concise"))[-1]
    assert summary["reward_stopped"] == "time" and summary["reward_trained"]
    saved = lab.meta().reward_model
    assert saved["stopped"] == "time" and 1 <= saved["epochs"] < 8
    steps = f"{saved['step']} step" + ("" if saved["step"] == 1 else "s")
    assert any(f"time budget (3 s) after {steps}, with {saved['epochs']} of up to 8 epochs begun" in w
               for w in saved["warnings"]), saved["warnings"]


def test_a_dpo_scenario_trains_with_dpo_and_the_story_says_so(lab, monkeypatch):
    small = dataclasses.replace(scenarios.get("cheerful"), judge="longer", n_prompts=6, k=3, max_new_tokens=8,
                                reward_seconds=30, eval_prompts=3)
    assert small.algorithm == "dpo"  # the shipped scenarios fit the workshop slot with DPO
    monkeypatch.setattr(scenarios, "SCENARIOS", (small,))
    seeds, train_reward, dpo = [], lab.train_reward, lab.dpo
    monkeypatch.setattr(lab, "train_reward", lambda cfg: seeds.append(("reward", cfg.seed)) or train_reward(cfg))
    monkeypatch.setattr(lab, "dpo", lambda cfg: seeds.append(("dpo", cfg.seed)) or dpo(cfg))
    rows = list(lab.run_scenario("cheerful", seed=3))
    summary = rows[-1]
    assert seeds == [("reward", 3), ("dpo", 3)] and summary["seed"] == 3  # the scenario's seed reaches each stage
    assert [s for s in dict.fromkeys(r["stage"] for r in rows[:-1])] == ["autopilot", "reward", "dpo"]
    steps = [r for r in rows[:-1] if r["stage"] == "dpo" and "loss/dpo" in r]
    assert summary["dpo_steps"] == len(steps) >= 1 and summary["policy"] == "v001"
    assert summary["last/rewards/margins"] == steps[-1]["rewards/margins"]
    assert "last/eval/rewards/accuracies" in summary and isinstance(summary["dpo_held_out"], bool)
    assert summary["kl_k3"] >= 0 and summary["reward_trained"] is True
    low, high = summary["score_gain_ci"]  # 3 prompts: an interval, around the gain
    assert low <= summary["score_gain"] <= high
    assert summary["score_gain"] == pytest.approx(summary["policy_score"] - summary["reference_score"])
    assert set(summary["seconds"]) == {"autopilot", "reward", "dpo", "evaluate", "total"}
    assert lab.versions()[-1]["algorithm"] == "dpo"
    assert any(x.startswith("DPO: ") for x in lab.story())


def test_report_of_a_fresh_session_and_votes(lab, tmp_path):
    from rlhf_lab.data import votes as V

    def vote(verdict, a="base", b="v001"):
        return V.make_vote("q", V.side(a, "one", 3), V.side(b, "two", 3), verdict, annotator="human")

    records = [vote("B"), vote("tie"), vote("A", "v001", "base"), vote("A")]
    V.append_votes(lab.session.root, records)
    V.retract_last(lab.session.root)  # the last vote (base won) is undone
    out = tmp_path / "r.html"
    lab.report(out)
    text = out.read_text()
    assert "No answers compared yet" in text and "Nothing ranked yet" in text
    assert "Arena leaderboard" in text
    board = re.search(r"Arena leaderboard</h2>(.*?)</table>", text, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", board, re.S)
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", r) for r in rows]
    cells = [c for c in cells if c]
    # v001 won two of three votes (one tie): it leads; wins / losses / ties as counted from the kept votes
    assert [c[0] for c in cells] == ["v001", "base"]
    assert cells[0][-3:] == ["2", "0", "1"] and cells[1][-3:] == ["0", "2", "1"]


def test_cli_scenario_without_run_applies_it(lab, tmp_path, capsys):
    from rlhf_lab.cli import main

    code = main(["scenario", "--session", "ws", "--name", "cheerful", "--sessions-dir", str(lab.sessions_dir)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["judge"] == "enthusiastic" and out["prompts"] == 40
    assert json.loads(lab.session.meta_path.read_text())["scenario"] == "cheerful"


def test_cli_report_needs_no_model_and_refuses_a_missing_session(lab, tmp_path, capsys):
    from rlhf_lab.cli import main

    lab.rank("a prompt", ["x", "y"], [[0], [1]])
    out = tmp_path / "cli.html"
    assert main(["report", "--session", "ws", "--out", str(out), "--sessions-dir", str(lab.sessions_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["rankings"] == 1 and "You ranked answers to 1 prompt" in out.read_text()
    before = sorted(p.name for p in lab.sessions_dir.iterdir())
    assert main(["report", "--session", "nope", "--out", str(tmp_path / "x.html"),
                 "--sessions-dir", str(lab.sessions_dir)]) == 2
    assert "No session named 'nope'" in capsys.readouterr().err
    assert sorted(p.name for p in lab.sessions_dir.iterdir()) == before and not (tmp_path / "x.html").exists()


def test_a_judge_ranks_its_own_prompt_set_and_evaluate_prefers_unranked_prompts(lab):
    from rlhf_lab.data.prompts import prompt_set

    assert scenarios.prompts_for_judge("enthusiastic") == list(prompt_set("cheerful"))
    assert scenarios.prompts_for_judge("mentions:you") == list(prompt_set("mention_you"))
    assert scenarios.prompts_for_judge("package.module:fn") == list(prompt_set("general"))
    cheerful = set(prompt_set("cheerful"))
    rows = [r for r in lab.simulate("enthusiastic", 3, GenerationConfig(k=2, max_new_tokens=4), seed=1)
            if not r.get("summary")]
    ranked = {r["prompt"] for r in rows}
    assert len(ranked) == 3 and ranked <= cheerful
    result = lab.evaluate("enthusiastic", len(cheerful) - 3, seed=7)
    assert {e["prompt"] for e in result["examples"]} <= cheerful - ranked  # unranked prompts come first
