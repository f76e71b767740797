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


def test_no_module_imports_itself_through_others() -> None:
    """No import cycle between kvmops' modules, typing-only imports included (the layers
    contract in pyproject.toml orders the packages; this keeps the modules inside them acyclic)."""
    import grimp

    graph = grimp.build_graph("kvmops", exclude_type_checking_imports=False)
    cycles = [sorted(c) for c in _cycles(graph)]
    assert cycles == []


def _cycles(graph: object) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    modules = sorted(graph.modules)  # type: ignore[attr-defined]
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}  # type: ignore[attr-defined]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for m in modules:
        if m not in index:
            visit(m)
    return out
