"""The bundle's data files (TRL / KTO / SFT / prompts JSONL, HH-RLHF, veRL parquet, LAUNCH.md) and `import`
reading the preference formats back, all or nothing."""
import json
import re
import shutil
from dataclasses import asdict

import pytest

from export_session import PROMPTS
from rlhf_lab.config import ModelConfig, RewardConfig
from rlhf_lab.config.model import DEFAULT_SYSTEM_PROMPT
from rlhf_lab.data.pairs import Group, split_by_prompt
from rlhf_lab.data.preference_formats import hh_text, parse_row
from rlhf_lab.data.session import Session
from rlhf_lab.errors import BrokenAdapter, ConfigError, ExportError, RankingInputError
from rlhf_lab.lab import Lab
from rlhf_lab.modeling import checkpoints
from test_export import read_jsonl

SYSTEM = {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}


def user(text):
    return [SYSTEM, {"role": "user", "content": text}]


def said(text):
    return [{"role": "assistant", "content": text}]


def test_preferences_are_conversational_with_rank_margins_and_no_cut_answers(exported):
    rows = read_jsonl(exported.out / "preferences.jsonl")
    got = {(r["prompt"][-1]["content"], r["chosen"][0]["content"], r["rejected"][0]["content"]): r["margin"]
           for r in rows}
    assert all(r["prompt"][0] == SYSTEM and r["chosen"][0]["role"] == "assistant" for r in rows)
    rain = PROMPTS[0]
    assert got[(rain, "Water falling from clouds.", "Rain.")] == 0.0  # adjacent ranks of three groups
    assert got[(rain, "Water falling from clouds.", "I like turtles and many other things.")] == 1.0  # best v worst
    assert got[(rain, "Rain.", "I like turtles and many other things.")] == 0.0
    assert got[(PROMPTS[4], "Nein", "Ja \u2029 ✓")] == 0.0
    assert not any("Drops" in key for key in got)  # the cut answer's pairs are left out
    assert len(rows) == 6 and exported.result["dropped_cut"] == 2


def test_kto_sft_prompts_and_hh_rows(exported):
    kto = {(r["prompt"][-1]["content"], r["completion"][0]["content"]): r["label"]
           for r in read_jsonl(exported.out / "kto.jsonl")}
    assert kto[(PROMPTS[0], "Water falling from clouds.")] is True
    assert kto[(PROMPTS[0], "I like turtles and many other things.")] is False
    assert (PROMPTS[0], "Rain.") not in kto and (PROMPTS[0], "Drops") not in kto  # middle rank; cut
    assert kto[(PROMPTS[2], "no")] is False and kto[(PROMPTS[2], "nope")] is False  # "all bad"
    assert len(kto) == 10

    assert read_jsonl(exported.out / "sft.jsonl") == [{"prompt": user(PROMPTS[1]), "completion": said("Green.")}]
    assert read_jsonl(exported.out / "prompts.jsonl") == [{"prompt": user(p)} for p in PROMPTS]

    hh = read_jsonl(exported.out / "hh-rlhf.jsonl")
    assert hh[0] == {"chosen": "\n\nHuman: What is rain?\n\nAssistant: Water falling from clouds.",
                     "rejected": "\n\nHuman: What is rain?\n\nAssistant: Rain."}
    assert len(hh) == 5 and not any("scattering" in r["chosen"] for r in hh)  # a turn marker inside an answer


def test_verl_parquet_has_verls_row_format(exported):
    from datasets import Features, List, Value, load_dataset

    files = {s: str(exported.out / "verl" / f"{s}.parquet") for s in ("train", "test")}
    data = load_dataset("parquet", data_files=files)
    message = {"role": Value("string"), "content": Value("string")}
    assert data["train"].features == Features({
        "data_source": Value("string"), "prompt": List(message), "ability": Value("string"),
        "reward_model": {"style": Value("string"), "ground_truth": Value("string")},
        "extra_info": {"split": Value("string"), "index": Value("int64")}})
    train, test = data["train"], data["test"]
    _, held = split_by_prompt([Group(p) for p in PROMPTS], RewardConfig().eval_fraction)
    assert [r["prompt"][-1]["content"] for r in test] == [g.prompt for g in held] and len(test) >= 1
    assert len(train) + len(test) == len(PROMPTS)
    row = train[0]
    assert row["data_source"] == "rlhf_lab/s" and row["prompt"][0] == SYSTEM
    assert row["reward_model"]["style"] == "model" and row["extra_info"] == {"split": "train", "index": 0}


def test_launch_md_names_the_engines_and_only_paths_that_exist(exported):
    text = (exported.out / "LAUNCH.md").read_text()
    for command in ("trl reward --config trl/reward.yaml --accelerate_config", "trl dpo --config trl/dpo.yaml",
                    "trl grpo --config trl/grpo.yaml", "openrlhf.cli.train_rm", "openrlhf.cli.train_ppo_ray",
                    "verl.trainer.main_ppo"):
        assert command in text
    paths = set(re.findall(r"\$PWD/([\w./-]+)", text)) | set(re.findall(r"--config (trl/\w+\.yaml)", text))
    assert {"policy_merged", "reward_model", "prompts.jsonl", "verl/train.parquet"} <= paths
    assert all((exported.out / p).exists() for p in paths if not p.startswith("runs/")), paths
    assert f"bias of {0.7:.6g}" in text and "<|endoftext|>" in text


@pytest.fixture
def records_only(tmp_path, exported):
    """A fresh session holding no rankings, opened without a model: where imports land."""
    def make(name):
        Session.create(tmp_path, name, asdict(ModelConfig(model=str(exported.tiny_dir))))
        lab = Lab(tmp_path)
        lab.open_session(name, with_model=False)
        return lab
    return make


def triples(pairs):
    return {(p.prompt, p.chosen, p.rejected) for p in pairs}


def test_import_reads_the_exported_preferences_and_hh_back(exported, records_only):
    uncut = triples(p for p in exported.lab.pairs() if not (p.chosen_truncated or p.rejected_truncated))
    lab = records_only("from-trl")
    assert lab.import_pairs(exported.out / "preferences.jsonl") == 6
    assert triples(lab.pairs()) == uncut
    lab = records_only("from-hh")
    assert lab.import_pairs(exported.out / "hh-rlhf.jsonl") == 5
    assert triples(lab.pairs()) == {t for t in uncut if "\n\nHuman:" not in t[1]}


def test_the_line_formats_parse_and_refuse_clearly():
    assert parse_row({"prompt": "p", "chosen": "a", "rejected": "b"}) == ("p", "a", "b")
    assert parse_row({"prompt": user("p"), "chosen": said("a"), "rejected": said("b")}) == ("p", "a", "b")
    implicit = {"chosen": user("p") + said("a"), "rejected": user("p") + said("b")}  # TRL's implicit prompt
    assert parse_row(implicit) == ("p", "a", "b")
    assert parse_row({"chosen": hh_text("p", " a"), "rejected": hh_text("p", "")}) == ("p", " a", "")
    two_turns = user("p") + said("x") + [{"role": "user", "content": "more"}]
    assert "multi-turn" in parse_row({"prompt": two_turns, "chosen": said("a"), "rejected": said("b")})
    hh_two = hh_text("p", "a") + hh_text("q", "b")
    assert "multi-turn" in parse_row({"chosen": hh_two, "rejected": hh_two})
    assert "differ before" in parse_row({"chosen": user("p") + said("a"), "rejected": user("q") + said("b")})
    assert "different Human" in parse_row({"chosen": hh_text("p", "a"), "rejected": hh_text("q", "b")})
    assert "empty prompt" in parse_row({"prompt": user(" "), "chosen": said("a"), "rejected": said("b")})
    image = [{"role": "user", "content": [{"type": "image"}]}]
    assert "text content" in parse_row({"prompt": image, "chosen": said("a"), "rejected": said("b")})
    assert "not a JSON object" in parse_row(["p", "a", "b"])


def test_a_bad_line_imports_nothing(tmp_path, records_only):
    lab = records_only("s")
    before = lab.session.rankings_path.read_bytes() if lab.session.rankings_path.exists() else b""
    good = {"prompt": user("p"), "chosen": said("a"), "rejected": said("b")}
    bad = {"prompt": user("p") + said("x") + [{"role": "user", "content": "y"}], "chosen": said("a"),
           "rejected": said("b")}
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(good | {"chosen": said("c")}) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(RankingInputError, match="line 3 .*multi-turn.*nothing was imported"):
        lab.import_pairs(path)
    after = lab.session.rankings_path.read_bytes() if lab.session.rankings_path.exists() else b""
    assert after == before and lab.pairs() == []


def test_single_file_formats(exported, tmp_path):
    lab = exported.lab
    assert lab.export(tmp_path / "c.jsonl") == 6
    assert read_jsonl(tmp_path / "c.jsonl") == read_jsonl(exported.out / "preferences.jsonl")
    assert lab.export(tmp_path / "h.jsonl", "hh-rlhf") == 5
    assert lab.export(tmp_path / "p.jsonl", "trl-plain") == len(lab.pairs())
    assert read_jsonl(tmp_path / "p.jsonl")[0] == {"prompt": PROMPTS[0], "chosen": "Water falling from clouds.",
                                                   "rejected": "Rain."}
    with pytest.raises(ConfigError, match="format"):
        lab.export(tmp_path / "x.jsonl", "csv")


def test_bad_targets_write_nothing(exported, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an empty folder"):
        exported.lab.export_bundle(tmp_path / "full")
    with pytest.raises(ExportError, match="looks like a file"):
        exported.lab.export_bundle(tmp_path / "pairs.jsonl")
    with pytest.raises(ConfigError, match="dtype"):
        exported.lab.export_bundle(tmp_path / "new", dtype="int4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"] and (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_an_adapter_that_does_not_fit_leaves_no_bundle(exported, tmp_path):
    """A failure after the data files were written (here: a policy adapter with a stray tensor) removes them all."""
    from safetensors.torch import load_file, save_file

    sessions = tmp_path / "sessions"
    Session.create(sessions, "t", asdict(ModelConfig(model=str(exported.tiny_dir), precision="fp32", lora_r=4)))
    session = Session.open(sessions, "t")
    session.add_ranking("p", ["a", "b"], [[0], [1]])
    source = exported.lab.session.adapter_dir("policy") / "v001"
    target = session.adapter_dir("policy") / "v001"
    shutil.copytree(source, target)
    tensors = load_file(target / "adapter_model.safetensors")
    save_file({**tensors, "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight": tensors[next(iter(tensors))].clone()},
              target / "adapter_model.safetensors")
    session.update_meta(policy_version="v001")
    lab = Lab(sessions)
    lab.open_session("t", with_model=False)
    with pytest.raises(ExportError, match="does not fit"):
        lab.export_bundle(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sessions"]


def test_cli_export(exported, tmp_path, capsys):
    from rlhf_lab.cli import main

    sessions = str(exported.lab.sessions_dir)
    assert main(["export", "--session", "s", "--format", "trl", "--out", str(tmp_path / "c.jsonl"),
                 "--sessions-dir", sessions]) == 0
    assert json.loads(capsys.readouterr().out) == {"pairs": 6, "out": str(tmp_path / "c.jsonl"), "format": "trl"}
    assert main(["export", "--session", "s", "--out", str(exported.out), "--sessions-dir", sessions]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_rank_margins_by_hand():
    from rlhf_lab.data.pairs import pairs_from_ranking
    from rlhf_lab.exports.preferences import rank_margin

    rec = {"id": "r", "prompt": "p", "completions": list("abcd"), "ranking": [[0], [1], [2], [3]], "verdict": "ranked"}
    got = {(p.chosen, p.rejected): rank_margin(p) for p in pairs_from_ranking(rec)}
    assert got == {("a", "b"): 0.0, ("b", "c"): 0.0, ("c", "d"): 0.0, ("a", "c"): 0.5, ("b", "d"): 0.5,
                   ("a", "d"): 1.0}
    two = {"id": "r", "prompt": "p", "completions": ["a", "b"], "ranking": [[0], [1]], "verdict": "ranked"}
    assert [rank_margin(p) for p in pairs_from_ranking(two)] == [0.0]


def test_a_session_without_trained_models_exports_its_data_and_the_base(records_only, tmp_path):
    lab = records_only("untrained")
    lab.rank("Why?", ["Because.", "No."], [[0], [1]])
    result = lab.export_bundle(tmp_path / "b")
    assert sorted(result["models"]) == ["policy_merged"] and result["recipes"] == ["reward", "dpo", "kto"]
    assert not (tmp_path / "b" / "reward_model").exists() and result["files"]["preferences.jsonl"] == 1
    assert 'model_name_or_path: "policy_merged"' in (tmp_path / "b" / "trl" / "reward.yaml").read_text()
    text = (tmp_path / "b" / "LAUNCH.md").read_text()
    assert "openrlhf.cli.train_rm" in text and "train_ppo_ray" not in text and "main_ppo" not in text
    assert "No `reward_model/`: the session has no reward model yet" in text
    assert "end-of-turn token closing the answer" not in text


def test_a_reward_model_read_over_the_whole_answer_is_not_exported(exported, records_only, tmp_path):
    lab = records_only("whole-answer")
    lab.rank("Why?", ["Because.", "No."], [[0], [1]])
    folder = lab.session.adapter_dir("reward")
    shutil.copytree(exported.lab.session.adapter_dir("reward"), folder)
    info = json.loads((folder / "info.json").read_text())
    (folder / "info.json").write_text(json.dumps({**info, "readout": "last+mean"}))
    result = lab.export_bundle(tmp_path / "b")
    assert "reward_model" not in result["models"] and not (tmp_path / "b" / "reward_model").exists()
    assert not (tmp_path / "b" / "reward_adapter").exists()
    assert 'model_name_or_path: "policy_merged"' in (tmp_path / "b" / "trl" / "reward.yaml").read_text()
    assert any("train-rm --readout last" in w for w in result["warnings"]) and result["reward_skipped"] == "readout"
    text = (tmp_path / "b" / "LAUNCH.md").read_text()
    assert "train-rm --readout last" in text and "reads the whole answer (see Notes)" in text
    assert "end-of-turn token closing the answer" not in text and "main_ppo" not in text
    assert "PPO needs a reward model: the lab's was not exported" in text


@pytest.mark.parametrize("damage", [b"", b"\x07garbage" * 10], ids=["empty", "garbage"])
def test_an_unreadable_policy_version_stops_the_export_and_writes_nothing(exported, records_only, tmp_path,
                                                                          damage):
    lab = records_only("broken-policy")
    lab.rank("Why?", ["Because.", "No."], [[0], [1]])
    folder = lab.session.adapter_dir("policy") / "v001"
    shutil.copytree(exported.lab.session.adapter_dir("policy") / "v001", folder)
    lab.session.update_meta(policy_version="v001")
    (folder / checkpoints.ADAPTER_FILE).write_bytes(damage)
    with pytest.raises(BrokenAdapter, match=checkpoints.ADAPTER_FILE):
        lab.export_bundle(tmp_path / "b")
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


@pytest.mark.parametrize("broken", ["info.json", "adapter_config.json", checkpoints.ADAPTER_FILE])
def test_an_unreadable_reward_model_is_left_out_of_the_export_not_the_rest(exported, records_only, tmp_path,
                                                                           broken):
    lab = records_only("broken-" + broken.replace(".", "-"))
    lab.rank("Why?", ["Because.", "No."], [[0], [1]])
    folder = lab.session.adapter_dir("reward")
    shutil.copytree(exported.lab.session.adapter_dir("reward"), folder)
    (folder / broken).write_text("{not json")  # garbage bytes, whatever the file
    result = lab.export_bundle(tmp_path / "b")
    assert "reward_model" not in result["models"] and "policy_merged" in result["models"]
    assert json.loads((tmp_path / "b" / "export.json").read_text())["reward_skipped"] == "broken"
    warnings = result["warnings"]
    assert any("not exported" in w and f"adapters/reward/{broken}" in w for w in warnings), warnings
    assert not any(str(folder) in w for w in result["warnings"])  # LAUNCH.md leaves this machine
    text = (tmp_path / "b" / "LAUNCH.md").read_text()
    assert "could not be read" in text and "reads the whole answer" not in text
    assert "Train one from preferences.jsonl\n# above" in text and "retrain it in the lab" in text
