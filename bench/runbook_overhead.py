"""What `kvmops run` adds over a bare papermill run of the same (empty) notebook.

Both execute one trivial code cell in a fresh ``kvmops`` kernel (ipykernel over IPC); the
kvmops run also reads the jupytext file, validates the parameters, loads the site, injects the
parameters, shows progress, scrubs and writes the notebook and record.json into a journal.
Kernel start dominates both. Usage: ``.venv/bin/python bench/runbook_overhead.py [rounds]``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill

from kvmops.runbook.discover import KERNEL
from kvmops.runbook.execute import run_runbook

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import write_results

EMPTY = '''# %% [markdown]
# # Empty
#
# Nothing.

# %% tags=["parameters"]
site = ""  # site
apply = False  # apply
confirm = ""  # confirm

# %%
x = 1
'''


def bare(work: Path) -> float:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nb.metadata["kernelspec"] = dict(KERNEL)
    t0 = time.perf_counter()
    papermill.execute_notebook(nb, str(work / "bare.ipynb"), kernel_name=KERNEL["name"], progress_bar=False)
    return time.perf_counter() - t0


def kvmops(books: Path, journal: Path) -> float:
    t0 = time.perf_counter()
    rec = run_runbook("empty", {}, site="demo", apply=False, journal_dir=journal, folder=books)
    took = time.perf_counter() - t0
    assert rec.status == "ok", rec.error
    return took


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "empty.py").write_text(EMPTY)
        bare(work)  # warm the file cache and imports for both
        b = [bare(work) for _ in range(rounds)]
        k = [kvmops(work, work / "journal") for _ in range(rounds)]
    mb, mk = statistics.median(b), statistics.median(k)
    print(f"bare papermill, empty notebook : median {mb:.2f} s  ({', '.join(f'{x:.2f}' for x in b)})")
    print(f"kvmops run_runbook, empty book : median {mk:.2f} s  ({', '.join(f'{x:.2f}' for x in k)})")
    print(f"added by kvmops: {mk - mb:+.2f} s ({(mk - mb) / mb * 100:+.0f}%; goal < 50%)")
    write_results("runbook_overhead", {
        "rounds": rounds, "bare_papermill_s": [round(x, 3) for x in b], "kvmops_s": [round(x, 3) for x in k],
        "bare_median_s": round(mb, 3), "kvmops_median_s": round(mk, 3),
        "overhead_pct": round((mk - mb) / mb * 100, 1), "goal": "kvmops adds < 50% to a bare papermill run",
    })


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
