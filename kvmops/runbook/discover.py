"""Finding runbooks (``kvmops/runbooks/<name>.py``, jupytext percent format, shipped inside
the package; ``runbooks/`` at a checkout's top points there) and reading what they declare:
title, summary and the parameters cell."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from kvmops.errors import ConfigError, NotFound
from kvmops.runbook import nbstack
from kvmops.runbook.params import Param, ParameterCellError, parse_cell

RUNBOOKS_ENV = "KVMOPS_RUNBOOKS"
PARAMETERS_TAG = "parameters"
# The kernel runbooks run in: ipykernel over IPC, stopped cleanly (kvmops/runbook/kernel.py).
KERNEL = {"name": "kvmops", "display_name": "kvmops (Python 3)", "language": "python"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def repo_top() -> Path:
    """The folder that holds the ``kvmops`` package (the repository's top in a checkout)."""
    return Path(__file__).resolve().parent.parent.parent


def shipped_runbooks() -> Path:
    """The runbooks shipped inside the package (``kvmops/runbooks``)."""
    return Path(str(resources.files("kvmops") / "runbooks"))


def runbooks_dir(folder: str | os.PathLike[str] | None = None) -> Path:
    """``folder``, else ``$KVMOPS_RUNBOOKS``, else the runbooks shipped in the package."""
    path = Path(folder or os.environ.get(RUNBOOKS_ENV) or shipped_runbooks())
    if not path.is_dir():
        raise ConfigError(f"runbook folder {path} does not exist: set {RUNBOOKS_ENV} to the runbooks/ folder")
    return path


@dataclass(frozen=True)
class RunbookInfo:
    """What a runbook declares: its name (file stem), title, summary and parameters."""

    name: str
    path: Path
    title: str
    summary: str
    parameters: tuple[Param, ...]

    def param(self, name: str) -> Param | None:
        return next((p for p in self.parameters if p.name == name), None)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters if p.secret)


def read_notebook(path: Path) -> Any:
    """The runbook as an in-memory notebook (never written as .ipynb), kernel ``kvmops``."""
    nbstack.load()
    import jupytext

    nb = jupytext.read(path, fmt="py:percent")
    nb.cells = [c for c in nb.cells if c.source.strip()]  # e.g. the blank line after the header
    nb.metadata["kernelspec"] = dict(KERNEL)
    nb.metadata.setdefault("language_info", {"name": "python"})
    return nb


def parameters_cell(nb: Any, where: str) -> Any:
    """The one code cell tagged ``parameters``."""
    cells = [c for c in nb.cells if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParameterCellError(f"{where}: needs exactly one cell tagged parameters, found {len(cells)}")
    return cells[0]


def info_of(path: Path, nb: Any | None = None) -> RunbookInfo:
    """Title (first ``# `` heading), summary (the paragraph after it) and parameters."""
    nb = nb if nb is not None else read_notebook(path)
    title, summary = _title_summary(nb)
    params = parse_cell(parameters_cell(nb, str(path)).source, f"{path} parameters cell")
    return RunbookInfo(path.stem, path, title or path.stem, summary, params)


def _title_summary(nb: Any) -> tuple[str, str]:
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.splitlines()
        title = next((ln[2:].strip() for ln in lines if ln.startswith("# ")), "")
        if not title:
            continue
        rest = "\n".join(lines[lines.index("# " + title) + 1 :]).strip()
        summary = rest.split("\n\n")[0].replace("\n", " ").strip()
        return title, summary
    return "", ""


def list_runbooks(folder: str | os.PathLike[str] | None = None) -> list[RunbookInfo]:
    """Every runbook in the folder, sorted by name."""
    base = runbooks_dir(folder)
    return [info_of(p) for p in sorted(base.glob("*.py")) if _NAME.match(p.stem)]


def find_runbook(name: str, folder: str | os.PathLike[str] | None = None) -> Path:
    """The file of runbook ``name``; NotFound lists the runbooks there are."""
    base = runbooks_dir(folder)
    if not _NAME.match(name):
        raise NotFound(f"{name!r} is not a runbook name (lower-case words joined by -, e.g. lv-snapshot)")
    path = base / f"{name}.py"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(base.glob("*.py")) if _NAME.match(p.stem))
        raise NotFound(f"no runbook {name!r} in {base} (runbooks: {known or 'none'})")
    return path
