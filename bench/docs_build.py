"""Benchmark: ``kvmops docs`` as before (one runbook after the other, nothing cached) side by
side with the build of now (runbooks in parallel, cached), cold and after editing prose.

Run: ``.venv/bin/python bench/docs_build.py [--rounds 3]``. Each round, interleaved so that a
change of the machine's load hits the three alike:

- *before*: a fresh folder, ``jobs=1, cache=False``: every runbook runs, one after the other,
  then ``mkdocs build --strict`` with mkdocs-jupyter's page cache empty (the build of core3);
- *cold*: a fresh folder, the defaults: runbooks in parallel (two per core), both caches
  empty (kvmops' executed runbooks, mkdocs-jupyter's rendered notebooks); goal: 30 s;
- *after editing prose*: a paragraph added to ``docs/index.md``, built again in the cold
  build's folder: no runbook runs again (source, site and kvmops unchanged), mkdocs renders
  the unchanged notebooks from its cache; goal: 10 s.

Every build is made from a staged copy of docs/ (the checkout is not touched; an edited copy
of the checkout's top is made of links, docs/ copied). Per build: wall seconds by phase and
the CPU seconds of the process and its children (kernels, mkdocs), which the machine's load
changes less. Results: ``bench/docs_build-results.json`` (medians of the rounds).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "bench"))

from machine import write_results  # noqa: E402

from kvmops_manual.build import build  # noqa: E402
from kvmops_manual.produce import default_jobs  # noqa: E402

GOALS = {"cold": 30.0, "prose": 10.0}
KINDS = ("before", "cold", "prose")
SKIP = {".git", ".venv", "docs", "site", "journal", ".cache", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def cpu() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def edited_top(folder: Path) -> Path:
    """A copy of the checkout's top made of links, with its own docs/ (to edit)."""
    top = folder / "top"
    top.mkdir()
    for entry in TOP.iterdir():
        if entry.name not in SKIP:
            (top / entry.name).symlink_to(entry)
    shutil.copytree(TOP / "docs", top / "docs", ignore=shutil.ignore_patterns("generated"))
    return top


def one(kind: str, top: Path, work: Path) -> dict[str, Any]:
    c0, t0 = cpu(), time.monotonic()
    opts: dict[str, Any] = {"jobs": 1, "cache": False} if kind == "before" else {}
    r = build(top, workdir=work, journal=work / "journal", progress=lambda _line: None, **opts)
    wall, used = time.monotonic() - t0, cpu() - c0
    row = {"kind": kind, "runbooks": len(r.published), "wall_s": round(wall, 1), "cpu_s": round(used, 1),
           **{f"{k}_s": round(v, 1) for k, v in r.seconds.items() if k != "total"}}
    print(row, flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=TOP / "bench" / "docs_build-results.json")
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kvmops-bench-docs-") as tmp:
        for i in range(args.rounds):
            folder = Path(tmp) / f"round{i}"
            folder.mkdir()
            top = edited_top(folder)
            rows.append(one("before", TOP, folder / "before"))
            rows.append(one("cold", top, folder / "now"))
            with (top / "docs" / "index.md").open("a") as f:
                f.write(f"\nA paragraph added by bench/docs_build.py, round {i}.\n")
            rows.append(one("prose", top, folder / "now"))
    load_after = os.getloadavg()
    medians = {k: {f: round(statistics.median(r[f] for r in rows if r["kind"] == k), 1)
                   for f in ("wall_s", "cpu_s", "runbooks_s", "mkdocs_s")} for k in KINDS}
    for k in KINDS:
        goal = GOALS.get(k)
        verdict = "" if goal is None else f"  goal {goal:g} s: {'met' if medians[k]['wall_s'] <= goal else 'NOT met'}"
        print(f"{k:7} median wall {medians[k]['wall_s']:6.1f} s  cpu {medians[k]['cpu_s']:6.1f} s{verdict}")
    write_results("docs_build", {
        "rounds": args.rounds, "jobs": default_jobs(), "goals_s": GOALS, "medians": medians, "results": rows,
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after],
        "note": "before: one runbook at a time, no cache; cold: parallel, caches empty; prose: a page edited, "
                "caches warm. Wall and CPU seconds (the process and its children: kernels, mkdocs)",
    }, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
