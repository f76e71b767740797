"""Runbooks are documents (issue 21): each code cell reads parameters, makes a call and shows
the result; the logic (branches, loops) lives in kvmops, where it is tested as functions."""

from __future__ import annotations

import ast

import pytest

from kvmops.runbook.discover import list_runbooks, read_notebook

BRANCHING = (ast.If, ast.For, ast.While, ast.Try, ast.IfExp, ast.ListComp, ast.SetComp, ast.DictComp,
             ast.GeneratorExp, ast.Match)


def _code_cells(name: str) -> list[str]:
    info = next(b for b in list_runbooks() if b.name == name)
    nb = read_notebook(info.path)
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("name", sorted(b.name for b in list_runbooks()))
def test_no_cell_branches_or_loops(name: str) -> None:
    found = []
    for i, source in enumerate(_code_cells(name), 1):
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, BRANCHING):
                found.append(f"cell {i}, line {node.lineno}: {type(node).__name__}")
    assert found == [], f"{name}: logic belongs in kvmops (a procedure or kvmops.notebook): {found}"


@pytest.mark.parametrize("name", sorted(b.name for b in list_runbooks()))
def test_no_runbook_asks_whether_its_site_is_recorded(name: str) -> None:
    """The demo is a recorded host answering the readers' own commands: no cell branches on it."""
    assert not any("replay" in s or ".recorded" in s for s in _code_cells(name))
