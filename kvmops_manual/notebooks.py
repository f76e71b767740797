"""Executed notebooks as published: checked for errors, marked with their provenance.

A notebook is the nbformat v4 dict papermill wrote. Nothing here executes code.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from kvmops.errors import KvmopsError
from kvmops.runbook import nbstack
from kvmops_manual.published import Published

nbstack.load()  # nbformat without the optional parts kvmops never uses (kvmops.runbook.nbstack)
import nbformat  # noqa: E402

Notebook = Any  # nbformat.NotebookNode (untyped)
_nbf: Any = nbformat  # untyped library: its calls are Any here
BANNER_ID = "kvmops-provenance"


class RunbookFailed(KvmopsError):
    """An executed runbook holds an error: the manual is not built from a failed run."""


def load(path: Path) -> Notebook:
    return _nbf.read(str(path), as_version=4)


def errors(nb: Notebook) -> list[str]:
    """``ename: evalue`` of every error output, plus papermill's failure mark if set."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"cell {i}: {out.get('ename', '?')}: {out.get('evalue', '')}")
    pm = nb.get("metadata", {}).get("papermill", {})
    if pm.get("exception") and not found:
        found.append("papermill marked the run as failed")
    return found


def check(nb: Notebook, where: str) -> None:
    """Raise :class:`RunbookFailed` naming the notebook and its errors."""
    problems = errors(nb)
    if problems:
        raise RunbookFailed(f"{where}: the executed runbook failed, not publishing it: " + "; ".join(problems))


def publishable(nb: Notebook, item: Published) -> Notebook:
    """A copy with the provenance banner as its first cell and local paths dropped (the same
    bytes for the same run and item)."""
    out = copy.deepcopy(nb)
    pm = out.get("metadata", {}).get("papermill")
    if isinstance(pm, dict):
        for key in ("input_path", "output_path", "parameters"):
            pm.pop(key, None)
    # a fixed cell id: the same run gives the same bytes (mkdocs-jupyter's cache of pages)
    banner = _nbf.v4.new_markdown_cell(item.banner_html(), id=BANNER_ID)
    banner["metadata"]["tags"] = ["kvmops-provenance"]
    out["cells"] = [banner, *out.get("cells", [])]
    return out


def save(nb: Notebook, path: Path) -> None:
    _nbf.write(nb, str(path))


def outputs(nb: Notebook) -> list[tuple[str, str]]:
    """Every text output of the code cells in order, as ``(kind, text)``.

    ``kind`` is ``stream`` (printed), ``markdown`` (a result shown as markdown) or ``plain``.
    """
    found = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            piece = _piece(out)
            if piece is not None and piece[1].strip():
                found.append(piece)
    return found


def _piece(out: dict[str, Any]) -> tuple[str, str] | None:
    if out.get("output_type") == "stream":
        return "stream", _join(out.get("text", ""))
    data = out.get("data", {})
    if "text/markdown" in data:
        return "markdown", _join(data["text/markdown"])
    if "text/plain" in data:
        return "plain", _join(data["text/plain"])
    return None


def _join(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)
