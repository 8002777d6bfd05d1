"""Crash safety of the session files: fsync'd appends, torn lines, retractions, reopen."""
import json

import pytest

from rlhf_lab.data.session import Session, validate_name
from rlhf_lab.errors import SessionError


def make(tmp_path, name="s1"):
    return Session.create(tmp_path, name, {"model": {"model": "default"}})


def test_names_validated(tmp_path):
    for bad in ("", "../x", "a/b", "a b", ".hidden", "x" * 65, None):
        with pytest.raises(SessionError):
            validate_name(bad)
    assert validate_name("ok-name_1") == "ok-name_1"
    assert list(tmp_path.iterdir()) == []


def test_ranking_append_reopen_and_retract(tmp_path):
    s = make(tmp_path)
    r1 = s.add_ranking("p1", ["a", "b"], [[1], [0]])
    r2 = s.add_ranking("p2", ["c", "d"], [], verdict="all_bad")
    reopened = Session.open(tmp_path, "s1")
    active, warnings = reopened.rankings()
    assert [r["id"] for r in active] == [r1["id"], r2["id"]] and warnings == []
    reopened.retract(r1["id"])
    lines = reopened.rankings_path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["retracts"] == r1["id"]  # appended, never edited
    assert [r["id"] for r in Session.open(tmp_path, "s1").rankings()[0]] == [r2["id"]]
    with pytest.raises(SessionError):
        reopened.retract(r1["id"])


def test_torn_last_line_tolerated_and_reported_then_append_continues(tmp_path):
    s = make(tmp_path)
    r1 = s.add_ranking("p1", ["a", "b"], [[0], [1]])
    with open(s.rankings_path, "ab") as f:
        f.write(b'{"id": "torn", "prom')  # a crash mid-write
    active, warnings = s.rankings()
    assert [r["id"] for r in active] == [r1["id"]]
    assert len(warnings) == 1 and "incomplete" in warnings[0]
    r2 = s.add_ranking("p2", ["c", "d"], [[1], [0]])
    active, warnings = s.rankings()
    assert [r["id"] for r in active] == [r1["id"], r2["id"]]
    assert len(warnings) == 1 and "line 2" in warnings[0]


def test_corrupt_middle_line_skipped_with_warning(tmp_path):
    s = make(tmp_path)
    s.add_ranking("p1", ["a", "b"], [[0], [1]])
    with open(s.rankings_path, "ab") as f:
        f.write(b"not json\n")
    s.add_ranking("p2", ["a", "b"], [[0], [1]])
    before = s.rankings_path.read_bytes()
    active, warnings = s.rankings()
    assert len(active) == 2 and "line 2" in warnings[0]
    assert s.rankings_path.read_bytes() == before  # reading never rewrites


def test_bad_rankings_rejected_and_nothing_written(tmp_path):
    s = make(tmp_path)
    for ranking in ([[0]], [[0], [0, 1]], [[0], []], [[0], [2]], "x"):
        with pytest.raises(SessionError):
            s.add_ranking("p", ["a", "b"], ranking)
    with pytest.raises(SessionError):
        s.add_ranking("p", [], [])
    with pytest.raises(SessionError):
        s.add_ranking("p", ["a"], [[0]], verdict="maybe")
    assert not s.rankings_path.exists()


def test_create_twice_and_open_missing(tmp_path):
    make(tmp_path)
    with pytest.raises(SessionError, match="already exists"):
        make(tmp_path)
    with pytest.raises(SessionError, match="No session"):
        Session.open(tmp_path, "nope")
    assert Session.list(tmp_path) == ["s1"]
