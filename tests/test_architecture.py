"""House rules that keep the design honest."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_ui_and_app_import_gradio():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "rlhf_lab").rglob("*.py")
                 if "ui" not in p.relative_to(ROOT / "rlhf_lab").parts and "gradio" in imports_of(p)]
    assert offenders == []
    assert "gradio" in imports_of(ROOT / "rlhf_lab" / "ui" / "__init__.py")  # the check can see an import


def test_builtin_prompts_are_many_and_distinct():
    from rlhf_lab.prompts import builtin_prompts
    prompts = builtin_prompts()
    assert len(prompts) >= 50 and len(set(prompts)) == len(prompts)


def test_no_trust_remote_code_or_pickle_defaults():
    from rlhf_lab.config import ModelConfig
    assert ModelConfig().trust_remote_code is False
    source = (ROOT / "rlhf_lab" / "models.py").read_text()
    assert "use_safetensors=True" in source
