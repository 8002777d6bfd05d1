"""Issue 19 on a tiny random llama: adapter saves stopped between their renames, broken adapter files, imports
all-or-nothing, concurrent create-or-open; after each, the session loads and trains."""
import errno
import json
import os
import shutil
import threading

import pytest

from rlhf_lab.config import ModelConfig, RewardConfig
from rlhf_lab.data.session import Session
from rlhf_lab.errors import DiskFull, RankingInputError
from rlhf_lab.lab import Lab
from rlhf_lab.modeling import checkpoints
from rlhf_lab.modeling.adapters import REWARD
from rlhf_lab.runtime import model_thread


@pytest.fixture
def make_lab(tiny_lab_factory):
    return lambda: tiny_lab_factory(None)


@pytest.fixture
def lab(tiny_lab_factory):
    return tiny_lab_factory()


def reopen(make_lab) -> Lab:
    lab = make_lab()
    lab.open_session("s")
    return lab


def rank_some(lab, n=4):
    for i in range(n):
        lab.rank(f"prompt {i}", [f"good {i}", f"bad {i}", f"worse {i}"], [[0], [1], [2]])


def save_reward(lab, version: int):
    model_thread.call(checkpoints.save_adapter, lab.models, REWARD, lab.session.adapter_dir("reward"),
                      {"version": version})


def saved_version(folder) -> int:
    return json.loads((folder / "info.json").read_text())["version"]


def trains(lab) -> None:
    rows = list(lab.train_reward(RewardConfig(epochs=1, batch_rankings=2)))
    assert rows[-1].get("summary") and lab.has_reward_model


# ---- 1. a save stopped between its renames does not lose the model ------------------------------------------
@pytest.mark.parametrize("stop_after,survivor", [(0, 1), (1, 2)], ids=["before-first-rename", "between-renames"])
def test_save_stopped_at_each_rename_recovers_on_open(lab, make_lab, monkeypatch, stop_after, survivor):
    rank_some(lab)
    save_reward(lab, 1)
    folder = lab.session.adapter_dir("reward")
    real_replace, calls = os.replace, []

    def crash(src, dst):
        if len(calls) >= stop_after:
            raise KeyboardInterrupt("power cut")
        calls.append(1)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_reward(lab, 2)
    monkeypatch.undo()
    assert folder.with_name("reward.tmp").is_dir()  # the save really stopped part-way
    assert folder.exists() == (stop_after == 0)
    again = reopen(make_lab)
    assert again.has_reward_model and saved_version(folder) == survivor  # a whole .tmp wins, else the old one
    assert sorted(p.name for p in folder.parent.iterdir()) == ["reward"]
    save_reward(again, 3)  # the next save does not delete what came back
    assert saved_version(folder) == 3 and sorted(p.name for p in folder.parent.iterdir()) == ["reward"]
    trains(again)


def test_save_stopped_after_both_renames_keeps_the_new_model(lab, make_lab, monkeypatch):
    save_reward(lab, 1)
    monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        save_reward(lab, 2)
    monkeypatch.undo()
    folder = lab.session.adapter_dir("reward")
    assert folder.with_name("reward.old").is_dir()
    reopen(make_lab)
    assert saved_version(folder) == 2 and sorted(p.name for p in folder.parent.iterdir()) == ["reward"]


def test_partial_tmp_loses_to_old(lab, make_lab):
    save_reward(lab, 1)
    folder = lab.session.adapter_dir("reward")
    os.replace(folder, folder.with_name("reward.old"))
    shutil.copytree(folder.with_name("reward.old"), folder.with_name("reward.tmp"))
    (folder.with_name("reward.tmp") / checkpoints.HEAD_FILE).unlink()  # cut while writing
    assert reopen(make_lab).has_reward_model and saved_version(folder) == 1


def test_policy_version_saved_halfway_comes_back(lab, make_lab):
    rank_some(lab)
    folder = lab.session.adapter_dir("policy") / "v001"
    model_thread.call(checkpoints.save_adapter, lab.models, "policy", folder, {"version": 1})
    lab.session.update_meta(policy_version="v001")
    os.replace(folder, folder.with_name("v001.old"))
    again = reopen(make_lab)
    assert again.meta().policy_version == "v001" and checkpoints.is_complete(folder)
    assert again.policy_versions() == ["base", "v001"]


# ---- 5. a zero-byte, corrupt or missing adapter file: named, set aside, the session goes on --------------------
@pytest.mark.parametrize("damage", ["zero-byte", "garbage", "missing"])
@pytest.mark.parametrize("name", [checkpoints.ADAPTER_FILE, checkpoints.HEAD_FILE])
def test_broken_reward_adapter_is_set_aside(lab, make_lab, damage, name):
    rank_some(lab)
    save_reward(lab, 1)
    path = lab.session.adapter_dir("reward") / name
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(b"" if damage == "zero-byte" else b"\x07garbage" * 10)
    again = reopen(make_lab)
    assert not again.has_reward_model
    assert any(name in w and "reward.broken-" in w for w in again.warnings), again.warnings
    aside = [p for p in path.parent.parent.iterdir() if p.name.startswith("reward.broken-")]
    assert len(aside) == 1 and (aside[0] / "info.json").is_file()  # kept for inspection
    assert len(again.rankings()) == 4
    trains(again)


def test_continuing_a_reward_model_whose_info_broke_since_it_opened_trains_fresh(lab):
    rank_some(lab)
    save_reward(lab, 1)
    folder = lab.session.adapter_dir("reward")
    (folder / "info.json").write_text("{not json")
    rows = list(lab.train_reward(RewardConfig(epochs=1, batch_rankings=2, continue_training=True)))
    assert rows[-1].get("summary") and lab.has_reward_model
    assert any("info.json" in n and "reward.broken-" in n for n in lab.session.notices), lab.session.notices
    assert checkpoints.readout_of(folder) == RewardConfig().readout


def test_broken_policy_version_falls_back_to_base(lab, make_lab):
    folder = lab.session.adapter_dir("policy") / "v001"
    model_thread.call(checkpoints.save_adapter, lab.models, "policy", folder, {})
    lab.session.update_meta(policy_version="v001")
    (folder / checkpoints.ADAPTER_FILE).write_bytes(b"")
    again = reopen(make_lab)
    assert again.meta().policy_version == "base"
    assert any("v001" in w and checkpoints.ADAPTER_FILE in w for w in again.warnings)
    assert not folder.exists() and list(folder.parent.glob("v001.broken-*"))


# ---- 2. imports are all-or-nothing and not doubled ---------------------------------------------------------
def write_pairs(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def pair_rows(n, prefix="p"):
    return [{"prompt": f"{prefix}{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(n)]


def test_import_with_bad_last_line_imports_nothing(lab, tmp_path):
    rank_some(lab)
    before = lab.session.rankings_path.read_bytes()
    path = write_pairs(tmp_path / "in.jsonl", pair_rows(5))
    with open(path, "a") as f:
        f.write('{"prompt": "p", "chosen": "\\ud800", "rejected": "b"}\n')
    with pytest.raises(RankingInputError, match="line 6"):
        lab.import_pairs(path)
    assert lab.session.rankings_path.read_bytes() == before


def test_import_on_a_full_disk_imports_nothing(lab, tmp_path, monkeypatch):
    rank_some(lab)
    before = lab.session.rankings_path.read_bytes()
    path = write_pairs(tmp_path / "in.jsonl", pair_rows(24))
    real_write = os.write

    def fills_up(fd, data):
        real_write(fd, bytes(data)[:len(data) // 2])  # half the batch fits, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", fills_up)
    with pytest.raises(DiskFull):
        lab.import_pairs(path)
    monkeypatch.undo()
    assert lab.session.rankings_path.read_bytes() == before


def test_import_twice_skips_what_is_there_and_trains(lab, make_lab, tmp_path):
    path = write_pairs(tmp_path / "in.jsonl", pair_rows(6) + pair_rows(1))  # one duplicate inside the file
    first = lab.import_pairs(path)
    assert first == 6 and first.skipped == 1
    second = lab.import_pairs(write_pairs(tmp_path / "more.jsonl", pair_rows(8)))
    assert second == 2 and second.skipped == 6
    again = reopen(make_lab)
    assert again.counts()["pairs"] == 8
    with open(again.session.rankings_path, "a") as f:  # a wrong-shape line does not stop training
        f.write(json.dumps({"id": "x", "prompt": "p", "completions": ["a", "b"], "ranking": [[0], [7]],
                            "verdict": "ranked"}) + "\n")
    trains(again)
    assert any("ignored" in w for w in again.warnings)


# ---- 7. eight first calls on one new session at once all succeed ---------------------------------------------
def test_eight_labs_create_or_open_the_same_session_at_once(make_lab):
    errors, ids, start = [], [], threading.Barrier(8)

    def first_rank(i):
        try:
            lab = make_lab()
            start.wait()
            lab.open_session("race", create=True)
            ids.append(lab.rank("hi", ["a", "b"], [[i % 2], [1 - i % 2]])["id"])
        except Exception as err:  # collected and reported below, with the thread that raised it
            errors.append(repr(err))

    threads = [threading.Thread(target=first_rank, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(ids) == 8
    lab = make_lab()
    lab.open_session("race")
    assert sorted(r["id"] for r in lab.rankings()) == sorted(ids) and lab.warnings == []
    assert Session.list(lab.sessions_dir) == ["race"]
