"""Demonstrations on disk and as pairs, with no model: append-only records, TRL SFT files in and out, and a
demonstration counting as preferred over every answer its card showed (for the reward model and DPO)."""
import json
import math
from dataclasses import asdict

import pytest

from rlhf_lab.config import ModelConfig
from rlhf_lab.data import demonstrations as demos
from rlhf_lab.data.pairs import count_pairs, groups_from_pairs, split_by_prompt
from rlhf_lab.data.session import Session
from rlhf_lab.errors import NoDemonstrations, NotEnoughPairs, RankingInputError, SessionError
from rlhf_lab.lab import Lab
from test_bad_input import tree


@pytest.fixture
def lab(tmp_path):
    """A Lab over a session's records only: nothing here needs a model."""
    Session.create(tmp_path, "s", asdict(ModelConfig()))
    lab = Lab(tmp_path)
    lab.open_session("s", with_model=False)
    return lab


def test_demonstration_is_saved_durably_and_read_back(lab):
    rec = lab.demonstrate("Say hi.", "Hi!", shown=["Hello there friend", "hey"], shown_truncated=[True, False])
    line = json.loads(demos.path_of(lab.session.root).read_text().splitlines()[0])
    assert line["id"] == rec["id"] and line["completion"] == "Hi!" and line["shown_truncated"] == [True, False]
    assert line["policy"] == "base" and line["round"] == 0 and line["annotator"] == "human"
    assert [d["id"] for d in lab.demonstrations()] == [rec["id"]]
    assert lab.counts()["demonstrations"] == 1


def test_a_demonstration_is_preferred_over_every_shown_answer(lab):
    lab.demonstrate("Say hi.", "Hi!", shown=["Hello there friend", "Hi!", "hey"], shown_truncated=[True, False, False])
    pairs = lab.pairs()
    assert [(p.chosen, p.rejected) for p in pairs] == [("Hi!", "Hello there friend"), ("Hi!", "hey")]  # not itself
    assert pairs[0].rejected_truncated and not pairs[0].chosen_truncated
    assert lab.counts()["pairs"] == 2


def test_all_bad_plus_a_written_answer_gives_pairs_where_the_ranking_gave_none(lab):
    rec = lab.rank("Name a colour.", ["Purple elephants dance", "I cannot"], [], verdict="all_bad")
    with pytest.raises(NotEnoughPairs):
        lab.train_reward()  # refused before any model is needed
    lab.demonstrate("Name a colour.", "Blue.", shown=rec["completions"], ranking_id=rec["id"])
    groups = groups_from_pairs(lab.pairs())
    assert count_pairs(groups) == 2 and len(groups) == 1 and groups[0].completions[0] == "Blue."


def test_demonstration_joins_the_group_of_its_cards_ranking(lab):
    cards = ["a long answer", "short", "medium answer"]
    rec = lab.rank("Q?", cards, [[1], [2], [0]])
    lab.demonstrate("Q?", "The best answer.", shown=cards)  # written before the ranking was saved: no id
    groups = groups_from_pairs(lab.pairs())
    assert len(groups) == 1 and count_pairs(groups) == 3 + 3  # the ranking's 3 pairs and 3 from the demonstration
    assert groups[0].completions[:3] == ["short", "medium answer", "a long answer"]
    assert all(p.ranking_id == rec["id"] for p in lab.pairs())
    assert lab.counts()["pairs"] == 6


def test_reward_model_and_dpo_share_one_split_by_prompt(lab):
    for i in range(10):
        lab.rank(f"prompt {i}", [f"good {i}", f"bad {i}"], [[0], [1]])
    lab.demonstrate("prompt 3", "best 3", shown=["good 3", "bad 3"])
    from rlhf_lab.config import DPOConfig, RewardConfig
    groups = groups_from_pairs(lab.pairs())
    held_rm = {g.prompt for g in split_by_prompt(groups, RewardConfig().eval_fraction)[1]}
    held_dpo = {g.prompt for g in split_by_prompt(groups, DPOConfig().eval_fraction)[1]}
    assert held_rm == held_dpo and len(held_rm) == math.ceil(RewardConfig().eval_fraction * 10)


def test_undo_retracts_the_newest_demonstration(lab):
    first = lab.demonstrate("A", "one")
    second = lab.demonstrate("B", "two")
    assert lab.undo_demonstration()["id"] == second["id"]
    assert [d["id"] for d in lab.demonstrations()] == [first["id"]]
    assert len(demos.path_of(lab.session.root).read_text().splitlines()) == 3  # appended, never edited


@pytest.mark.parametrize("prompt,answer,message", [("", "x", "prompt"), ("   ", "x", "prompt"), ("Q", "", "empty"),
                                                   ("Q", "  \n", "empty")])
def test_bad_demonstrations_change_nothing(lab, tmp_path, prompt, answer, message):
    before = tree(tmp_path)
    with pytest.raises(SessionError, match=message):
        lab.demonstrate(prompt, answer)
    assert tree(tmp_path) == before


def test_sft_and_dpo_without_data_are_refused_and_write_nothing(lab, tmp_path):
    before = tree(tmp_path)
    with pytest.raises(NoDemonstrations, match="SFT needs demonstrations"):
        lab.sft()
    with pytest.raises(NotEnoughPairs, match="DPO needs preference pairs"):
        lab.dpo()
    assert tree(tmp_path) == before
    lab.rank("tie", ["x", "y"], [[0, 1]])
    before = tree(tmp_path)
    with pytest.raises(NotEnoughPairs):
        lab.dpo()  # a tie gives no pair
    assert tree(tmp_path) == before and lab.jobs.current is None and lab.jobs.last is None


def test_torn_last_line_is_skipped_and_reported(lab):
    lab.demonstrate("A", "one")
    with open(demos.path_of(lab.session.root), "a", encoding="utf-8") as f:
        f.write('{"id": "x", "prompt": "B", "compl')
    records, warnings = demos.read(lab.session.root)
    assert len(records) == 1 and "incomplete" in warnings[0]
    lab.demonstrate("C", "three")  # the next append starts on its own line
    assert [d["prompt"] for d in lab.demonstrations()] == ["A", "C"]


# ---- TRL SFT JSONL ---------------------------------------------------------------------------------------

def test_export_is_trl_conversational_and_imports_back_unchanged(lab, tmp_path):
    lab.demonstrate("Qué tal? \u2028 line", "Bien — gracias 🙂", shown=["meh"])
    lab.demonstrate("Say hi.", "Hi!")
    out = tmp_path / "sft.jsonl"
    assert lab.export_demonstrations(out) == 2
    rows = [json.loads(line) for line in out.read_bytes().decode().split("\n") if line]
    assert rows[0] == {"prompt": [{"role": "user", "content": "Qué tal? \u2028 line"}],
                       "completion": [{"role": "assistant", "content": "Bien — gracias 🙂"}]}
    Session.create(tmp_path, "other", asdict(ModelConfig()))
    other = Lab(tmp_path)
    other.open_session("other", with_model=False)
    assert other.import_demonstrations(out) == 2
    assert [(d["prompt"], d["completion"]) for d in other.demonstrations()] == \
        [(d["prompt"], d["completion"]) for d in lab.demonstrations()]
    again = other.import_demonstrations(out)
    assert again == 0 and again.skipped == 2


def test_import_reads_standard_rows_and_drops_a_system_turn(lab, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"prompt": "plain", "completion": "text"}) + "\n" + json.dumps(
        {"prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Q"}],
         "completion": [{"role": "assistant", "content": "A"}]}) + "\n", encoding="utf-8")
    assert lab.import_demonstrations(path) == 2
    assert [(d["prompt"], d["completion"], d["annotator"]) for d in lab.demonstrations()] == \
        [("plain", "text", "import"), ("Q", "A", "import")]


@pytest.mark.parametrize("line", ['{"prompt": "Q"}', '{"prompt": "", "completion": "A"}', "not json", "[1, 2]",
                                  '{"prompt": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": '
                                  '"x"}, {"role": "user", "content": "Q2"}], "completion": "A"}',
                                  '{"prompt": "Q", "completion": [{"role": "user", "content": "A"}]}'])
def test_a_bad_line_imports_nothing(lab, tmp_path, line):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "ok", "completion": "fine"}) + "\n" + line + "\n", encoding="utf-8")
    before = tree(lab.session.root)
    with pytest.raises(RankingInputError, match="line 2"):
        lab.import_demonstrations(path)
    assert tree(lab.session.root) == before


def test_export_to_a_missing_folder_is_refused(lab, tmp_path):
    lab.demonstrate("A", "one")
    with pytest.raises(RankingInputError, match="does not exist"):
        lab.export_demonstrations(tmp_path / "nope" / "out.jsonl")
