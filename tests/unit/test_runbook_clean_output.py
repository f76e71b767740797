"""A run that goes well says nothing on stderr: every runbook's plan on the demo site, five
times each, through the CLI, with the kernels' own stderr included (issue: ipykernel's TCP
notice at every start, its shutdown races; kvmops/runbook/kernel.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.demo_plans import CASES

TIMES = 5
TOP = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_plan_says_nothing_on_stderr(name: str, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "tests.support.plan_loop", name, str(TIMES), str(tmp_path)],
                          cwd=TOP, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.count(f"runbook {name}: ok (plan only)") == TIMES
    assert len(list(tmp_path.iterdir())) == TIMES  # five runs, five records


def test_a_failed_plan_says_the_step_the_error_and_the_way_out(tmp_path: Path) -> None:
    kvmops = Path(sys.executable).parent / "kvmops"
    proc = subprocess.run([str(kvmops), "plan", "guest-move", "-p", "guest", "vmtest1", "-p", "target", "demo2",
                           "--site", "demo", "--journal", str(tmp_path), "-q"],
                          cwd=TOP, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stdout == ""
    failed, way_out, notebook, record = proc.stderr.strip().splitlines()  # nothing else: no kernel noise
    assert failed.startswith("kvmops: runbook guest-move FAILED at step 'Check both hosts' (cell In [")
    assert failed.endswith("NotFound: no guest vmtest1 on demo or demo2 (see the inventory runbook on each)")
    assert way_out == "what to do: read the message: it names what is missing on which host"
    assert notebook.startswith("executed notebook: ") and record.startswith("record: ")
