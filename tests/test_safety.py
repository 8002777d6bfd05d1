"""Safe defaults: local binding, no share links, safetensors only, no remote code unless asked."""
import ast
from pathlib import Path

import pytest

from app import host_warning, parse
from rlhf_lab.cli import build_parser
from rlhf_lab.errors import ModelLoadError
from rlhf_lab.modeling.loading import resolve_model_path

ROOT = Path(__file__).resolve().parent.parent


def test_binds_locally_by_default_and_warns_otherwise():
    assert parse([]).host == "127.0.0.1"
    assert host_warning("127.0.0.1") is None and host_warning("localhost") is None
    warning = host_warning("0.0.0.0")
    assert warning and "WARNING" in warning and "0.0.0.0" in warning


def test_launch_never_creates_share_links():
    tree = ast.parse((ROOT / "app.py").read_text())
    launches = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "launch"]
    assert launches
    for call in launches:
        share = {k.arg: k.value for k in call.keywords}.get("share")
        assert isinstance(share, ast.Constant) and share.value is False
    assert "--share" not in (ROOT / "app.py").read_text()


def test_remote_code_off_unless_asked():
    assert parse([]).trust_remote_code is False and parse(["--trust-remote-code"]).trust_remote_code is True
    args = build_parser().parse_args(["generate", "--session", "s", "--prompt", "p"])
    assert args.trust_remote_code is False


def test_pickled_weights_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelLoadError, match="safetensors"):
        resolve_model_path(str(tmp_path))
