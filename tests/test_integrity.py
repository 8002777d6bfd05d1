"""Issue 19 without a model: all-or-nothing appends and imports, a full disk, bad records skipped and reported,
lost session.json rebuilt, concurrent creation, JSONL split on '\\n' only, odd unicode round trips."""
import errno
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rlhf_lab.data import jsonl
from rlhf_lab.data.pairs import Pair, session_pairs
from rlhf_lab.data.preference_files import export_trl, read_trl
from rlhf_lab.data.session import Session
from rlhf_lab.errors import DiskFull, LabError, RankingInputError, SessionError

ROOT = Path(__file__).resolve().parent.parent


def make(tmp_path, name="s1"):
    return Session.create(tmp_path, name, {"model": "default"})


def write_pairs(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"".join((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8") for r in rows))
    return path


# ---- 3. a full disk: one clear error, no torn line, nothing of the batch kept ----------------------------------
@pytest.mark.parametrize("fail_after", [0, 1])
def test_full_disk_keeps_nothing_of_the_batch_and_says_so(tmp_path, monkeypatch, fail_after):
    s = make(tmp_path)
    kept = s.add_ranking("p1", ["a", "b"], [[0], [1]])
    before = s.rankings_path.read_bytes()
    real_write, calls = os.write, []

    def full_disk(fd, data):
        calls.append(1)
        if len(calls) > fail_after:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data)[:7])  # a partial write first: the disk fills mid-record

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(DiskFull, match="disk is full.*nothing was saved"):
        s.add_ranking("p2", ["c", "d"], [[1], [0]])
    monkeypatch.undo()
    assert s.rankings_path.read_bytes() == before  # no torn line
    active, warnings = s.rankings()
    assert [r["id"] for r in active] == [kept["id"]] and warnings == []


def test_other_write_errors_are_lab_errors_too(tmp_path, monkeypatch):
    s = make(tmp_path)
    monkeypatch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(LabError, match="nothing was saved"):
        s.add_ranking("p", ["a", "b"], [[0], [1]])
    monkeypatch.undo()
    assert s.rankings_path.read_bytes() == b""


def test_ctrl_c_mid_batch_leaves_nothing(tmp_path, monkeypatch):
    s = make(tmp_path)
    s.add_ranking("p1", ["a", "b"], [[0], [1]])
    before = s.rankings_path.read_bytes()
    real_write = os.write

    def interrupted(fd, data):
        real_write(fd, bytes(data)[:20])
        raise KeyboardInterrupt

    recs = [s.make_ranking(f"q{i}", ["x", "y"], [[0], [1]]) for i in range(50)]
    monkeypatch.setattr(os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        s.append_rankings(recs)
    monkeypatch.undo()
    assert s.rankings_path.read_bytes() == before


def test_full_disk_from_the_cli_is_one_line_exit_2(tmp_path):
    """The CLI's own process with an ENOSPC injected into os.write: exit 2, one line, the file unchanged."""
    s = make(tmp_path)
    s.add_ranking("p1", ["a", "b"], [[0], [1]])
    before = s.rankings_path.read_bytes()
    # tempfile is probed (a small write) before the fault goes in: dill, which the test-only `datasets` package
    # installs, makes torch's import call tempfile.gettempdir(); the app's own dependencies do not.
    code = ("import errno, os, sys, tempfile\n"
            "tempfile.gettempdir()\n"
            "def full(fd, data): raise OSError(errno.ENOSPC, 'No space left on device')\n"
            "os.write = full\n"
            "from rlhf_lab.cli import main\n"
            "sys.exit(main(['undo', '--session', 's1']))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "RLHF_LAB_SESSIONS": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "disk is full" in result.stderr
    assert s.rankings_path.read_bytes() == before


# ---- 4. a valid-JSON line of the wrong shape is skipped and reported, never a crash -------------------------
BAD_LINES = [
    {"id": "s2", "retracts": ["abc"]},
    {"id": "n1", "completions": ["a", "b"], "ranking": [[0], [1]], "verdict": "ranked"},  # no prompt
    {"id": "n2", "prompt": "p", "completions": ["a", "b"], "ranking": [[0], [7]], "verdict": "ranked"},
    {"id": "n3", "prompt": "p", "completions": ["a", "b"], "ranking": "01", "verdict": "ranked"},
    {"id": "n4", "prompt": "p", "completions": ["a", "b"], "ranking": [[True], [0]], "verdict": "ranked"},
    {"id": "n5", "prompt": "p", "completions": ["a", 3], "ranking": [[0], [1]], "verdict": "ranked"},
    {"id": "n6", "prompt": "p", "completions": ["a", "b"], "ranking": [[0], [1]], "verdict": "maybe"},
    {"id": ["x"], "prompt": "p", "completions": ["a", "b"], "ranking": [[0], [1]], "verdict": "ranked"},
    {"id": "n7", "prompt": "p", "completions": ["a", "b"], "ranking": [[0], [1]], "verdict": "ranked",
     "truncated": [False]},
    {"id": "n8", "prompt": "p", "completions": ["a", "b"], "ranking": [], "verdict": "ranked", "round": "1"},
    {"retracts": "abc"},
]


@pytest.mark.parametrize("bad", BAD_LINES, ids=[json.dumps(b)[:40] for b in BAD_LINES])
def test_wrong_shape_record_skipped_with_line_number(tmp_path, bad):
    s = make(tmp_path)
    first = s.add_ranking("p1", ["a", "b"], [[0], [1]])
    with open(s.rankings_path, "ab") as f:
        f.write((json.dumps(bad) + "\n").encode())
    last = s.add_ranking("p2", ["c", "d"], [[1], [0]])
    active, warnings = s.rankings()
    assert [r["id"] for r in active] == [first["id"], last["id"]]
    assert len(warnings) == 1 and "line 2" in warnings[0] and "ignored" in warnings[0]
    pairs = session_pairs(active)  # what training and export build on
    assert [(p.chosen, p.rejected) for p in pairs] == [("a", "b"), ("d", "c")]
    assert export_trl(pairs, tmp_path / "out.jsonl") == 2
    s.retract(last["id"])  # undo still works with the bad line there
    assert [r["id"] for r in s.rankings()[0]] == [first["id"]]


def test_records_written_must_pass_the_same_schema(tmp_path):
    s = make(tmp_path)
    for prompt, completions in (("", ["a", "b"]), ("  ", ["a", "b"]), (None, ["a", "b"]), ("p", ["a", None])):
        with pytest.raises(SessionError):
            s.add_ranking(prompt, completions, [[0], [1]])
    assert not s.rankings_path.exists()


# ---- 6. a lost session.json is rebuilt from the records -----------------------------------------------------
def test_lost_session_json_is_rebuilt_from_records(tmp_path):
    s = make(tmp_path)
    r1 = s.add_ranking("p1", ["a", "b"], [[0], [1]], policy="v002", round_=2)
    s.meta_path.unlink()
    assert Session.list(tmp_path) == ["s1"]  # still listed
    reopened = Session.open(tmp_path, "s1")
    meta = reopened.read_meta()
    assert meta.round == 2 and meta.policy_version == "base"  # v002's folder is gone: start from the base
    active, warnings = reopened.rankings()
    assert [r["id"] for r in active] == [r1["id"]] and "rebuilt" in warnings[0]


def test_create_over_lost_session_json_rebuilds_instead_of_refusing(tmp_path):
    s = make(tmp_path)
    s.add_ranking("p1", ["a", "b"], [[0], [1]])
    (s.adapter_dir("policy") / "v001").mkdir(parents=True)
    s.add_ranking("p2", ["a", "b"], [[0], [1]], policy="v001", round_=1)
    s.meta_path.unlink()
    again = Session.create(tmp_path, "s1", {"model": "tiny"})
    meta = again.read_meta()
    assert meta.model == {"model": "tiny"} and meta.policy_version == "v001" and meta.round == 1
    assert "rebuilt" in again.notices[0] and len(again.rankings()[0]) == 2
    with pytest.raises(SessionError, match="already exists"):
        Session.create(tmp_path, "s1", {"model": "tiny"})


# ---- 7. creating a session is create-or-open, atomically ----------------------------------------------------
RACER = """
import sys
from rlhf_lab.data.session import Session
s = Session.create(sys.argv[1], "race", {"model": "default"}, exist_ok=True)
print(s.add_ranking("p", ["a", "b"], [[0], [1]])["id"])
"""


def test_eight_processes_creating_one_session_all_succeed(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    ids = {o[0].strip() for o in outs}
    session = Session.open(tmp_path, "race")
    active, warnings = session.rankings()
    assert {r["id"] for r in active} == ids and len(ids) == 8 and warnings == []
    assert session.read_meta().name == "race"
    assert sorted(p.name for p in (tmp_path / "race").iterdir()) == ["rankings.jsonl", "session.json"]


# ---- 8. JSONL split on '\n' only; odd unicode round trips; what UTF-8 cannot hold is refused ------------------
ODD = ["😀", "👩‍👩‍👧", "שלום", "مرحبا", "\u200b", "\u200d", "\ufeff", "\u2028", "\u2029", "\x00", "\r", "\r\n",
       "\x85", "\x0b", "\x0c", "\x1c", "\\", '"', "\t", "é", "ﬁ", "\U0010ffff"]


def odd_text(rng: random.Random) -> str:
    return "".join(rng.choice(ODD + ["a", " ", "b", "\n"]) for _ in range(rng.randint(1, 12)))


@pytest.mark.parametrize("seed", range(20))
def test_odd_unicode_round_trips_rankings_export_import(tmp_path, seed):
    rng = random.Random(seed)
    s = make(tmp_path)
    written = []
    for _ in range(5):
        prompt, a, b = "p" + odd_text(rng), odd_text(rng), odd_text(rng) + "!"
        written.append(s.add_ranking(prompt, [a, b], [[0], [1]])["id"])
        assert s.rankings()[1] == []
    active = Session.open(tmp_path, "s1").rankings()[0]
    assert [r["id"] for r in active] == written
    pairs = session_pairs(active)
    export_trl(pairs, tmp_path / "out.jsonl")
    assert read_trl(tmp_path / "out.jsonl") == [Pair(p.prompt, p.chosen, p.rejected) for p in pairs]
    from rlhf_lab.lab import Lab  # our own export imports into another session unchanged, and only once

    make(tmp_path, "s2")
    lab = Lab(tmp_path)
    lab.open_session("s2", with_model=False)
    assert lab.import_pairs(tmp_path / "out.jsonl") == len(pairs)
    assert [(p.prompt, p.chosen, p.rejected) for p in lab.pairs()] == [(p.prompt, p.chosen, p.rejected) for p in pairs]
    assert lab.import_pairs(tmp_path / "out.jsonl").skipped == len(pairs) and lab.warnings == []


def test_u2028_inside_an_imported_text_is_one_line(tmp_path):
    path = write_pairs(tmp_path / "in.jsonl", [{"prompt": "a\u2028b", "chosen": "c\u2029d", "rejected": "e\x85f"}])
    assert read_trl(path) == [Pair("a\u2028b", "c\u2029d", "e\x85f")]


def test_lone_surrogates_refused_on_write_and_on_import(tmp_path):
    s = make(tmp_path)
    with pytest.raises(SessionError, match="lone surrogate"):
        s.add_ranking("p", ["ok", "bad \ud800"], [[0], [1]])
    assert not s.rankings_path.exists()
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": "\\udc00", '
                   '"rejected": "b"}\n')
    with pytest.raises(RankingInputError, match="line 2.*lone surrogate.*nothing was imported"):
        read_trl(bad)
    with pytest.raises(SessionError, match="lone surrogate"):
        export_trl([Pair("p", "\ud83d", "b")], tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.jsonl.tmp").exists()


def test_jsonl_read_never_splits_on_unicode_line_breaks(tmp_path):
    path = tmp_path / "x.jsonl"
    jsonl.append(path, [{"t": "a\u2028b\u2029c\x85d\x1ce"}, {"t": "2"}])
    assert [r["t"] for r in jsonl.read(path)[0]] == ["a\u2028b\u2029c\x85d\x1ce", "2"]


# ---- 9, 10. checks the CLI makes before any model loads or any session folder appears ------------------------
def run_cli(monkeypatch, tmp_path, argv, stdin=""):
    from rlhf_lab import cli
    from rlhf_lab.lab import sessions as lab_sessions

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not load before the input is checked")

    monkeypatch.setattr(lab_sessions, "load_model", no_model)
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO(stdin))
    return cli.main([*argv, "--sessions-dir", str(tmp_path / "sessions")])


def test_rank_with_empty_stdin_says_there_were_no_answers(monkeypatch, tmp_path, capsys):
    code = run_cli(monkeypatch, tmp_path, ["rank", "--session", "s", "--prompt", "hi", "--order", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and "no answers on stdin" in err and "\n" not in err
    assert not (tmp_path / "sessions").exists()


@pytest.mark.parametrize("judge", ["no_such_module_xyz:score", "json:no_such_function", "json:__doc__"])
def test_custom_judge_checked_before_model_or_session(monkeypatch, tmp_path, capsys, judge):
    for command in ("simulate", "evaluate"):
        code = run_cli(monkeypatch, tmp_path, [command, "--session", "s", "--judge", judge])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error:") and "udge" in err, err
    assert not (tmp_path / "sessions").exists()


@pytest.mark.parametrize("command", ["simulate", "evaluate"])
def test_judge_help_says_it_runs_that_code(capsys, command):
    from rlhf_lab.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "module:function" in text and "runs as code" in text


def test_sessions_lists_a_session_whose_metadata_was_lost(tmp_path, capsys):
    from rlhf_lab.cli import main

    s = make(tmp_path)
    s.add_ranking("p1", ["a", "b"], [[0], [1]])
    s.meta_path.unlink()
    assert main(["sessions", "--sessions-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == ["s1"]
    assert main(["export", "--session", "s1", "--format", "trl-plain", "--out", str(tmp_path / "o.jsonl"),
                 "--sessions-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "rebuilt" in captured.err and json.loads(captured.out)["pairs"] == 1
    assert s.meta_path.is_file()
