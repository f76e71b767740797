"""The machine a benchmark ran on, and the results file every bench script writes.

``write_results("inventory_scale", {...})`` writes ``bench/inventory_scale-results.json``:
``{"bench": ..., "measured": UTC time, "machine": {hostname, cpu_model, cores, python,
kernel}, ...}``. The manual's benchmarks page (kvmops_manual.benchmarks) reads them.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def cpu_model() -> str:
    """``model name`` from /proc/cpuinfo (the platform's processor name elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """Hostname, CPU model, cores, Python and kernel of this machine."""
    return {"hostname": platform.node(), "cpu_model": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "kernel": platform.release()}


def write_results(name: str, data: dict[str, Any], out: Path | None = None) -> Path:
    """Write ``bench/<name>-results.json`` (or ``out``) with the machine named; returns the path."""
    path = out or BENCH / f"{name}-results.json"
    doc = {"bench": name, "measured": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), **data}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results: {path}")
    return path
