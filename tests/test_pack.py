"""Sharing a session as a zip: the round trip, and every refusal leaves the sessions folder as it was."""
import hashlib
import json
import zipfile

import pytest

from rlhf_lab.data import pack
from rlhf_lab.data.session import Session
from rlhf_lab.errors import SessionError


def tree(path):
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def packed(tmp_path):
    """A session with rankings, metrics, votes, an adapter and leftovers that must not travel; packed."""
    src = tmp_path / "src"
    s = Session.create(src, "demo", {"model": "default"})
    s.add_ranking("p", ["a", "b"], [[0], [1]])
    s.log_metrics([{"phase": "ppo", "step": 1, "objective/kl": 0.5}])
    (s.root / "votes.jsonl").write_text('{"id": "v1", "winner": "a"}\n')
    v1 = s.adapter_dir("policy") / "v001"
    v1.mkdir(parents=True)
    (v1 / "adapter_model.safetensors").write_bytes(b"\x00weights" * 100)
    (v1 / "info.json").write_text("{}")
    (s.adapter_dir("policy") / "v002.tmp").mkdir()
    (s.adapter_dir("policy") / "v002.tmp" / "half.safetensors").write_bytes(b"half")
    (s.root / "notes.txt").write_text("not shared")
    out = tmp_path / "demo.zip"
    manifest = pack.pack(s.root, out)
    return s, out, manifest, tmp_path / "dest"


def test_round_trip_keeps_every_file_and_renames(packed):
    s, out, manifest, dest = packed
    assert set(manifest["files"]) == {"session.json", "rankings.jsonl", "metrics.jsonl", "votes.jsonl",
                                      "adapters/policy/v001/adapter_model.safetensors",
                                      "adapters/policy/v001/info.json"}
    assert pack.unpack(out, dest) == {"session": "demo", "files": 6}
    assert tree(dest / "demo") == {k: v for k, v in tree(s.root).items() if k in manifest["files"]}
    got = pack.unpack(out, dest, "copy")
    assert got["session"] == "copy" and json.loads((dest / "copy" / "session.json").read_text())["name"] == "copy"
    assert Session.open(dest, "copy").rankings()[0][0]["prompt"] == "p"
    assert sorted(p.name for p in dest.iterdir()) == ["copy", "demo"]  # no staging folder left


def test_refuses_an_existing_session(packed):
    _, out, _, dest = packed
    pack.unpack(out, dest)
    before = tree(dest)
    with pytest.raises(SessionError, match="already exists.*--as NAME"):
        pack.unpack(out, dest)
    (dest / "empty").mkdir()
    with pytest.raises(SessionError, match="already exists"):
        pack.unpack(out, dest, "empty")  # an empty folder of that name is not replaced either
    assert tree(dest) == before and sorted(p.name for p in dest.iterdir()) == ["demo", "empty"]


def rewrite(src, dst, change):
    """Copy the zip `src` to `dst`, letting change(name, data, manifest) return new (name, data) or None."""
    with zipfile.ZipFile(src) as zin:
        manifest = json.loads(zin.read(pack.MANIFEST))
        entries = [(i.filename, zin.read(i.filename)) for i in zin.infolist() if i.filename != pack.MANIFEST]
    with zipfile.ZipFile(dst, "w") as zout:
        kept = [e for e in (change(n, d, manifest) for n, d in entries) if e]
        zout.writestr(pack.MANIFEST, json.dumps(manifest))
        for name, data in kept:
            zout.writestr(name, data)
    return dst


def traversal(name, data, manifest):
    if name == "rankings.jsonl":
        manifest["files"]["../evil.jsonl"] = manifest["files"].pop(name)
        return "../evil.jsonl", data
    return name, data


def absolute(name, data, manifest):
    if name == "metrics.jsonl":
        manifest["files"]["/tmp/evil"] = manifest["files"].pop(name)
        return "/tmp/evil", data
    return name, data


def tampered(name, data, manifest):
    return (name, data.replace(b"\"p\"", b"\"q\"")) if name == "rankings.jsonl" else (name, data)


def unlisted(name, data, manifest):
    return name, data  # plus an extra file below


def missing(name, data, manifest):
    return None if name == "metrics.jsonl" else (name, data)


@pytest.mark.parametrize("change,message", [(traversal, "outside a session"), (absolute, "outside a session"),
                                            (tampered, "does not match its sha256"),
                                            (missing, "does not match its manifest")])
def test_refusals_write_nothing(packed, tmp_path, change, message):
    _, out, _, dest = packed
    bad = rewrite(out, tmp_path / "bad.zip", change)
    with pytest.raises(SessionError, match=message):
        pack.unpack(bad, dest)
    assert not dest.exists() or list(dest.iterdir()) == []
    assert not (tmp_path / "evil.jsonl").exists()


def test_refuses_unlisted_files_links_and_non_packs(packed, tmp_path):
    _, out, _, dest = packed
    extra = rewrite(out, tmp_path / "extra.zip", unlisted)
    with zipfile.ZipFile(extra, "a") as zf:
        zf.writestr("adapters/policy/v001/surprise.py", "print('hi')")
    with pytest.raises(SessionError, match="not listed"):
        pack.unpack(extra, dest)
    link = rewrite(out, tmp_path / "link.zip", unlisted)
    with zipfile.ZipFile(link, "a") as zf:
        info = zipfile.ZipInfo("adapters/policy/v001/link")
        info.external_attr = (0o120777 << 16)  # a symlink entry
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(SessionError, match="a link"):
        pack.unpack(link, dest)
    (tmp_path / "plain.zip").write_bytes(b"not a zip")
    with pytest.raises(SessionError, match="Cannot read"):
        pack.unpack(tmp_path / "plain.zip", dest)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("session.json", "{}")
    with pytest.raises(SessionError, match="not a session packed"):
        pack.unpack(tmp_path / "other.zip", dest)
    with pytest.raises(SessionError, match="not allowed"):
        pack.unpack(out, dest, "../up")
    assert not dest.exists() or list(dest.iterdir()) == []


def test_cli_pack_and_unpack(packed, tmp_path, capsys):
    from rlhf_lab.cli import main

    s, _, _, dest = packed
    zip_path = tmp_path / "cli.zip"
    assert main(["pack", "--session", "demo", "--out", str(zip_path), "--sessions-dir", str(s.root.parent)]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 6
    assert main(["unpack", "--in", str(zip_path), "--as", "mine", "--sessions-dir", str(dest)]) == 0
    assert json.loads(capsys.readouterr().out)["session"] == "mine"
    assert main(["unpack", "--in", str(zip_path), "--as", "mine", "--sessions-dir", str(dest)]) == 2
    assert "already exists" in capsys.readouterr().err
