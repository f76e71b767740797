"""The package boundaries: the runtime (``kvmops``) never imports the tools around it."""

from __future__ import annotations

import ast
from pathlib import Path

import kvmops
from kvmops.runbook.discover import list_runbooks, shipped_runbooks

RUNTIME = Path(kvmops.__file__).parent
TOOLS = ("kvmops_lab", "kvmops_manual")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_runtime_imports_no_tool() -> None:
    offenders = {
        str(p.relative_to(RUNTIME)): sorted(m for m in _imports(p) if m.split(".")[0] in TOOLS)
        for p in RUNTIME.rglob("*.py") if "runbooks" not in p.parts
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_runbooks_ship_inside_the_package() -> None:
    assert shipped_runbooks() == RUNTIME / "runbooks"
    names = {b.name for b in list_runbooks()}
    assert {"guest-create", "lv-snapshot", "lv-restore"} <= names
