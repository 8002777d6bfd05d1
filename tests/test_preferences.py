import json

import pytest

from rlhf_lab.data.pairs import pairs_from_ranking, session_pairs
from rlhf_lab.data.preference_files import export_trl, read_trl
from rlhf_lab.data.rankings import groups_from_ranks, parse_order
from rlhf_lab.errors import RankingInputError


def rec(ranking, verdict="ranked", completions=("a", "b", "c", "d"), prompt="p", id_="r1"):
    return {"id": id_, "prompt": prompt, "completions": list(completions), "ranking": ranking, "verdict": verdict}


def test_cross_group_pairs_no_ties_within_group():
    pairs = pairs_from_ranking(rec([[1], [0, 2], [3]]))
    got = {(p.chosen, p.rejected) for p in pairs}
    assert got == {("b", "a"), ("b", "c"), ("b", "d"), ("a", "d"), ("c", "d")}
    assert ("a", "c") not in got and ("c", "a") not in got


def test_no_pairs_from_all_bad_skip_or_single_group():
    assert pairs_from_ranking(rec([], verdict="all_bad")) == []
    assert pairs_from_ranking(rec([], verdict="skipped")) == []
    assert pairs_from_ranking(rec([[0, 1, 2, 3]])) == []


def test_identical_texts_give_no_pair_and_duplicates_removed():
    r1 = rec([[0], [1]], completions=("x", "x"))
    assert pairs_from_ranking(r1) == []
    r2 = rec([[0], [1]], completions=("good", "bad"), id_="a")
    r3 = rec([[0], [1]], completions=("good", "bad"), id_="b")
    assert len(session_pairs([r2, r3])) == 1


def test_parse_order_syntax():
    assert parse_order("2>1=3>4", 4) == [[1], [0, 2], [3]]
    assert parse_order("2 1 3 4", 4) == [[1], [0], [2], [3]]
    assert parse_order("3", 4) == [[2], [0, 1, 3]]
    for bad in ("", "5>1", "1>1", "a>b", "1=>2", "0"):
        with pytest.raises(RankingInputError):
            parse_order(bad, 4)


def test_groups_from_ranks():
    assert groups_from_ranks(["2", "1", "2", "3"]) == [[1], [0, 2], [3]]
    with pytest.raises(RankingInputError, match="card 2"):
        groups_from_ranks(["1", None])


def test_export_and_read_trl(tmp_path):
    pairs = session_pairs([rec([[1], [0]], completions=("worse", "better"))])
    out = tmp_path / "pairs.jsonl"
    assert export_trl(pairs, out) == 1
    assert json.loads(out.read_text()) == {"prompt": "p", "chosen": "better", "rejected": "worse"}
    assert [(p.chosen, p.rejected) for p in read_trl(out)] == [("better", "worse")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a"}\n')
    with pytest.raises(RankingInputError, match="line 1"):
        read_trl(bad)


def test_read_trl_reports_progress_on_large_files(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{i}", "chosen": "a", "rejected": "b"}) + "\n"
                            for i in range(25)), encoding="utf-8")
    seen = []
    pairs = read_trl(path, on_progress=lambda n, total: seen.append((n, total)), every=10)
    assert len(pairs) == 25 and seen == [(10, 26), (20, 26)]  # 25 lines and the empty one after the last \n
