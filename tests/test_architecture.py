"""House rules that keep the design honest: the layers, gradio only in the UI, safe defaults."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "rlhf_lab"

# Each package and the packages it may import from rlhf_lab (besides errors, config and itself).
# ui, cli, notebook -> lab -> algos, arena, exports, modeling, generation, data, runtime.
ALLOWED = {
    "data": set(),
    "runtime": set(),
    "modeling": {"data"},
    "generation": {"modeling"},
    "algos": {"modeling", "generation", "data", "metrics"},
    "arena": {"algos", "modeling", "generation", "data", "judges"},
    "exports": {"modeling", "generation", "data"},
    "judges": set(),
    "metrics": set(),
    "plots": {"metrics"},
    "diagnostics": {"metrics"},
    "scenarios": {"data"},
    "story": {"metrics", "diagnostics"},  # the story and the warnings judge a reward model by one rule
    "report": {"metrics", "plots", "story"},
    "lab": {"algos", "arena", "exports", "modeling", "generation", "data", "runtime", "judges", "metrics",
            "diagnostics", "scenarios", "story", "report"},
    "cli": {"lab", "data", "generation", "judges", "diagnostics", "scenarios"},
    "ui": {"lab", "data", "metrics", "plots", "diagnostics", "judges", "scenarios"},
    "notebook": {"lab", "data", "metrics", "plots", "ui"},  # ui only inside Notebook.ui()
}
ALWAYS = {"errors", "config"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def lab_imports(path: Path) -> set[str]:
    """The top-level rlhf_lab packages/modules a file imports (relative or absolute)."""
    rel = path.relative_to(PKG).parts
    here = list(rel[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                parts = base + (node.module.split(".") if node.module else [])
                if parts:
                    found.add(parts[0])
                else:  # "from . import x" at the package root
                    found.update(a.name for a in node.names)
            elif node.module and node.module.startswith("rlhf_lab."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("rlhf_lab."))
    return found


def layer_of(path: Path) -> str:
    return path.relative_to(PKG).parts[0].removesuffix(".py")


def test_no_import_runs_back_up_the_layers():
    offenders = []
    for path in PKG.rglob("*.py"):
        layer = layer_of(path)
        if layer not in ALLOWED:
            continue
        bad = lab_imports(path) - ALLOWED[layer] - ALWAYS - {layer}
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []


def test_the_layer_check_can_fail():
    assert "lab" in lab_imports(PKG / "cli" / "commands.py")  # it sees relative imports
    assert "lab" not in ALLOWED["algos"] and "ui" not in ALLOWED["lab"]


def test_data_and_algos_know_no_sessions_threads_or_gradio():
    for path in list((PKG / "data").rglob("*.py")) + [PKG / "errors.py", PKG / "judges.py"]:
        assert not imports_of(path) & {"torch", "gradio", "transformers"}, path
    for path in (PKG / "algos").rglob("*.py"):
        source = path.read_text()
        assert "Session" not in source and "model_thread" not in source and "Thread(" not in source, path
        assert not {"lab", "runtime", "ui", "cli"} & lab_imports(path), path


def test_only_ui_and_app_import_gradio():
    offenders = [str(p.relative_to(ROOT)) for p in PKG.rglob("*.py")
                 if "ui" not in p.relative_to(PKG).parts and "gradio" in imports_of(p)]
    assert offenders == []
    assert "gradio" in imports_of(PKG / "ui" / "__init__.py")  # the check can see an import


def test_small_files_and_classes():
    big_files, big_classes = [], []
    for path in PKG.rglob("*.py"):
        lines = path.read_text().splitlines()
        if len(lines) > 400:
            big_files.append(f"{path.relative_to(ROOT)}: {len(lines)}")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 250:
                big_classes.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert big_files == [] and big_classes == []


def test_builtin_prompts_are_many_and_distinct():
    from rlhf_lab.data.prompts import builtin_prompts
    prompts = builtin_prompts()
    assert len(prompts) >= 50 and len(set(prompts)) == len(prompts)


def test_no_trust_remote_code_or_pickle_defaults():
    from rlhf_lab.config import ModelConfig
    assert ModelConfig().trust_remote_code is False
    source = (PKG / "modeling" / "loading.py").read_text()
    assert "use_safetensors=True" in source
