"""The lines a runbook's steps print, and what ``kvmops run`` reads back from them.

``kvmops.notebook.step`` prints ``==> title`` when a step starts and, when it fails,
``STEP FAILED: title`` and ``If this step fails: what to do``. A failed run names the step and
the way out from these lines (else from a ``step("...")`` call or the heading above the cell).
Plain text only: the kernel imports this module with every runbook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

STEP_MARK = "==> "
FAILED_MARK = "STEP FAILED: "
WAY_OUT_MARK = "If this step fails: "
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
_STEP_CALL = re.compile(r"""\bstep\(\s*(?:title\s*=\s*)?["'](.+?)["']""")


@dataclass(frozen=True)
class Failure:
    """Where a run stopped: the step, and what the runbook says to do then ("" if nothing)."""

    step: str
    way_out: str = ""


def headings(nb: Any) -> dict[int, str]:
    """Cell index -> the label of the step it belongs to (the nearest heading above it)."""
    out: dict[int, str] = {}
    label = ""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            found = _HEADING.findall(cell.source)
            if found:
                label = found[-1]
        elif "parameters" in cell.metadata.get("tags", []):
            out[i] = "parameters"
        elif "injected-parameters" in cell.metadata.get("tags", []):
            out[i] = "parameters (injected)"
        else:
            out[i] = label
    return out


def failure(nb: Any | None, source: str) -> Failure:
    """The step a failing cell was in and its way out: its last ``==> step`` line, a
    ``step("...")`` call in its source, or the heading above it."""
    if nb is not None:
        labels = headings(nb)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not any(o.output_type == "error" for o in cell.get("outputs", [])):
                continue
            lines = [ln for o in cell.outputs if o.output_type == "stream" for ln in "".join(o.text).splitlines()]
            way_out = _last(lines, WAY_OUT_MARK)
            step = _last(lines, STEP_MARK) or _last_call(cell.source) or labels.get(i, "") or f"cell {i}"
            return Failure(step, way_out)
    return Failure(_last_call(source) or "unknown step")


def _last(lines: list[str], mark: str) -> str:
    found = [ln[len(mark):].strip() for ln in lines if ln.startswith(mark)]
    return found[-1] if found else ""


def _last_call(source: str) -> str:
    calls = _STEP_CALL.findall(source)
    return str(calls[-1]) if calls else ""
