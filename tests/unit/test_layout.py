"""The package's layering contract: imports only go down the pipeline, no cycles, light top-level import.

import-linter checks the layers and the pytest ban (contracts in pyproject.toml); grimp, the import graph
it is built on, finds cycles between modules. Each rule is also shown to fail on a planted violation.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp", reason="import-linter is not installed (pip install import-linter)")

ROOT = Path(__file__).resolve().parents[2]


def _lint(root: Path) -> subprocess.CompletedProcess:
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True))")
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "shisa_spec", tmp_path / "shisa_spec", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


_CYCLES = """
import json, grimp
graph = grimp.build_graph("shisa_spec", cache_dir=None)
found = []
for mod in sorted(graph.modules):
    for dep in sorted(graph.find_modules_directly_imported_by(mod)):
        # a package importing its own submodules (a registry does) is not a cycle between modules
        if dep.startswith(mod + ".") or mod.startswith(dep + "."):
            continue
        if graph.chain_exists(importer=dep, imported=mod):
            found.append([mod, dep])
print(json.dumps(found))
"""


def _cycles(root: Path) -> list[tuple[str, str]]:
    """Pairs (a, b): a imports b and b leads back to a. Run in a fresh process so ``root``'s copy is the one read."""
    proc = subprocess.run([sys.executable, "-c", _CYCLES], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, check=True)
    return [tuple(pair) for pair in json.loads(proc.stdout)]


def test_contracts_hold():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 2 kept, 0 broken" in proc.stdout


def test_no_import_cycles():
    assert _cycles(ROOT) == []


@pytest.mark.parametrize("module, line, contract", [
    ("spec/normalize.py", "from shisa_spec.generation import transcript", "layers"),
    ("generation/cache.py", "from shisa_spec.gate import compare", "layers"),
    ("gate/report.py", "import shisa_spec.frontends.cli", "layers"),
    ("verdicts/judge.py", "import pytest", "only the front ends import pytest"),
])
def test_planted_violation_breaks_the_contract(tmp_path, module, line, contract):
    root = _copy(tmp_path)
    path = root / "shisa_spec" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # planted\n", encoding="utf-8")
    proc = _lint(root)
    assert proc.returncode != 0
    assert "BROKEN" in proc.stdout and contract in proc.stdout


def test_planted_cycle_is_found(tmp_path):
    root = _copy(tmp_path)
    path = root / "shisa_spec" / "spec" / "normalize.py"
    path.write_text(path.read_text(encoding="utf-8") + "\nfrom shisa_spec.spec import extract  # planted\n", encoding="utf-8")
    assert ("shisa_spec.spec.normalize", "shisa_spec.spec.extract") in _cycles(root)


def test_top_level_import_is_light():
    code = "import sys, shisa_spec; print(sorted(m for m in ('torch', 'transformers', 'pytest') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
