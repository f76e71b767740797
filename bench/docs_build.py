"""Benchmark: how long ``kvmops docs`` takes, by phase (measured, not asserted).

Run: ``.venv/bin/python bench/docs_build.py [--runs 2]``. Each run builds on a staged copy
of docs/ in one temporary folder (the checkout is not touched): every runbook in plan mode
against the demo site, then ``mkdocs build --strict``, then the secret scan. The first run
has a cold mkdocs-jupyter cache; later runs reuse it (the runbooks always run again).
Results land in ``bench/docs_build-results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))

from kvmops_manual.build import build  # noqa: E402

sys.path.insert(0, str(TOP / "bench"))
from machine import write_results  # noqa: E402


def site_size(site: Path) -> tuple[int, int]:
    files = [p for p in site.rglob("*") if p.is_file()]
    return len([p for p in files if p.name == "index.html"]), sum(p.stat().st_size for p in files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=TOP / "bench" / "docs_build-results.json")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="kvmops-bench-docs-") as tmp:
        work = Path(tmp)
        for i in range(1, args.runs + 1):
            r = build(TOP, workdir=work, journal=work / "journal", progress=lambda _line: None)
            pages, size = site_size(r.site_dir)
            row = {"run": i, "cache": "cold" if i == 1 else "warm", "runbooks": len(r.published),
                   **{f"{k}_s": round(v, 1) for k, v in r.seconds.items()},
                   "pages": pages, "site_mib": round(size / 2**20, 1)}
            results.append(row)
            print(json.dumps(row), flush=True)
    write_results("docs_build", {"results": results, "goal": "measured, no goal"}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
