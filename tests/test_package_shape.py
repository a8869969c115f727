"""Package shape: ``import ds2d2_mm`` (what a config's ``custom_imports`` loads) registers the core
and nothing else; the tooling (apis, pipeline, report, benchmark, synthetic generator) and the
commands import the core, never the reverse; models never import the engine; the package root
holds ``__init__.py``, ``registry.py`` and folders; one module writes files atomically."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ds2d2_mm"
#: Subpackages that sit on top of the core (they may import it; it may not import them).
TOP_LAYERS = ("ds2d2_mm.apis", "ds2d2_mm.tooling", "ds2d2_mm.cli")
#: Words of module names that are tooling wherever they would sit.
TOOLING_WORDS = ("synthetic", "report", "pipeline", "compare")

_PROBE = (
    "import json, sys, ds2d2_mm; "
    "print(json.dumps({'file': ds2d2_mm.__file__, "
    "'modules': sorted(m for m in sys.modules if m.startswith('ds2d2_mm'))}))"
)


def _import_ds2d2_mm() -> dict:
    """``import ds2d2_mm`` in a fresh interpreter: its file and the ds2d2_mm modules it loaded."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    proc = subprocess.run([sys.executable, "-c", _PROBE], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_loads_no_tooling_no_generator_no_report():
    probe = _import_ds2d2_mm()
    assert Path(probe["file"]).resolve().is_relative_to(PACKAGE), probe["file"]
    modules = probe["modules"]
    assert "ds2d2_mm.datasets.coco_datasets" in modules  # the registered core is there
    layered = [m for m in modules if m.startswith(TOP_LAYERS)]
    assert layered == [], layered
    named = [m for m in modules if any(w in m.rsplit(".", 1)[-1] for w in TOOLING_WORDS)]
    assert named == [], named


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at any depth (lazy imports included);
    for ``from X import y`` both ``X`` and ``X.y``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return out


def _core_files() -> list[Path]:
    layers = [PACKAGE / layer.split(".", 1)[1] for layer in TOP_LAYERS]
    return [p for p in sorted(PACKAGE.rglob("*.py"))
            if not any(p.is_relative_to(layer) for layer in layers)]


def test_core_never_imports_tooling_commands_or_plotting():
    files = _core_files()
    assert PACKAGE / "models" / "distillers" / "spectral_distiller.py" in files
    assert PACKAGE / "datasets" / "__init__.py" in files
    bad = {}
    for path in files:
        wrong = sorted(m for m in _imports(path)
                       if m.startswith(TOP_LAYERS) or m.split(".")[0] == "matplotlib")
        if wrong:
            bad[str(path.relative_to(REPO))] = wrong
    assert bad == {}, bad


def test_report_and_pipeline_do_not_import_each_other_both_ways():
    tooling = PACKAGE / "tooling"
    parts = sorted((tooling / "report").glob("*.py"))
    assert tooling / "report" / "__init__.py" in parts and len(parts) > 1
    report = set().union(*(_imports(path) for path in parts))
    assert not [m for m in report if m.startswith(("ds2d2_mm.tooling.pipeline",
                                                   "ds2d2_mm.tooling.compare"))], report
    assert "ds2d2_mm.tooling.report" in _imports(tooling / "pipeline.py")
    # what both need lives in runs.py, which imports neither
    runs = _imports(tooling / "runs.py")
    assert not [m for m in runs if m.startswith("ds2d2_mm")], runs


def test_package_root_holds_init_registry_and_folders_only():
    files = sorted(p.name for p in PACKAGE.iterdir() if p.is_file() and p.suffix == ".py")
    assert files == ["__init__.py", "registry.py"], files


def test_models_never_import_the_engine_or_the_tooling():
    bad = {}
    for path in sorted((PACKAGE / "models").rglob("*.py")):
        wrong = sorted(m for m in _imports(path)
                       if m.startswith(("ds2d2_mm.engine", *TOP_LAYERS)))
        if wrong:
            bad[str(path.relative_to(REPO))] = wrong
    assert bad == {}, bad


#: What writing a file atomically is made of: only ds2d2_mm/utils/io.py may do it.
_ATOMIC_WRITE_CALLS = {("os", "replace"), ("os", "rename"), ("tempfile", "mkstemp"),
                       ("tempfile", "NamedTemporaryFile")}


def _atomic_write_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                node.value.id, node.attr) in _ATOMIC_WRITE_CALLS:
            found.append(f"{node.value.id}.{node.attr}:{node.lineno}")
        elif isinstance(node, ast.Attribute) and node.attr == "replace" and isinstance(
                node.value, ast.Name) and node.value.id in ("tmp", "temp"):
            found.append(f"{node.value.id}.replace:{node.lineno}")  # Path(tmp).replace(dst)
    return found


def test_one_atomic_writer_in_the_whole_project():
    bad = {}
    for path in sorted([*PACKAGE.rglob("*.py"), *(REPO / "tools").rglob("*.py")]):
        if path == PACKAGE / "utils" / "io.py":
            continue
        found = _atomic_write_calls(path)
        if found:
            bad[str(path.relative_to(REPO))] = found
    assert bad == {}, bad
    assert _atomic_write_calls(PACKAGE / "utils" / "io.py")  # the check sees the writer itself
