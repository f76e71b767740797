"""Faults on real LVM metadata: the LVM runbooks run by ``kvmops run`` (a kernel each) against a
scratch VG on a loop device, each change failing before it runs and after it ran.

This machine has no device-mapper, so LVM runs with activation disabled: creating, renaming,
resizing and removing LVs work for real; snapshots and merges do not (their runbooks are
tests/unit/test_faults_procedures.py's, on simulated LVM, and the lab tier's).

For each runbook and each way to fail: the run exits 1 naming the step, with the injected
fault; no lock is left; ``lvs`` (read by the test) shows the LVs as before the change (it
failed before it ran) or as after it (it ran, then reported failure); a re-run without the
fault reaches the goal, and its record shows that it ran the change only when it had not run:
a change that ran and then failed is recognised as done.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kvmops.runners.faults import FAULT_EXIT
from tests.conftest import need_tools
from tests.integration.test_runbook_storage import SITE, VG, lvs
from tests.support.faults import fault_env
from tests.support.locks import held_locks
from tests.support.loop import scratch_vg

pytestmark = pytest.mark.integration
M = 1024**2

CASES: dict[str, tuple[str, dict[str, str], dict[str, str], str | None, str, dict[str, int]]] = {
    # name: (runbook, setup LVs, params, confirm, step, goal)
    "lv-create": ("lv-create", {}, {"guest": "t1", "size": "64m"}, None, "Create the LV", {"vmt1": 64 * M}),
    "lv-resize-grow": ("lv-resize", {"vmt1": "64m"}, {"guest": "t1", "size": "96m"}, None, "Resize the LV",
                       {"vmt1": 96 * M}),
    "lv-resize-shrink": ("lv-resize", {"vmt1": "96m"}, {"guest": "t1", "size": "64m"}, f"{VG}/vmt1",
                         "Resize the LV", {"vmt1": 64 * M}),
    "lv-remove": ("lv-remove", {"vmt1": "32m"}, {"lv": "vmt1"}, f"{VG}/vmt1", "Remove the LV", {}),
    "lv-rename": ("lv-rename", {"vmt1": "32m"}, {"lv": "vmt1", "new_name": "vmt2"}, None, "Rename the LV",
                  {"vmt2": 32 * M}),
}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    need_tools("lvm", "losetup")
    (tmp_path / "node.xml").write_text("<node/>\n")
    (tmp_path / "site.toml").write_text(SITE)
    with scratch_vg(tmp_path, VG, "256M"):
        yield tmp_path / "site.toml"


def kvmops_run(tmp: Path, runbook: str, site: Path, params: dict[str, str], confirm: str | None,
               fault: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``kvmops run RUNBOOK --apply``; its output kept in ``tmp``, and its journal record."""
    argv = [sys.executable, "-m", "kvmops.cli.main", "run", runbook, "--site", str(site), "--apply"]
    argv += [a for k, v in params.items() for a in ("-p", k, v)] + (["--confirm", confirm] if confirm else [])
    env = {**os.environ, "KVMOPS_JOURNAL": str(tmp / "journal"), "KVMOPS_LOCK_DIR": str(tmp / "locks"), **fault}
    cli = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    n = len(list(tmp.glob("cli-*.log")))
    (tmp / f"cli-{n + 1}.log").write_text(f"$ {' '.join(argv)}\n{cli.stdout}\n--- stderr\n{cli.stderr}")
    records = sorted((tmp / "journal").glob("*/record.json"), key=lambda p: p.stat().st_mtime)
    return cli, json.loads(records[-1].read_text())


def changes(rec: dict[str, Any]) -> list[str]:
    return [c["command"] for c in rec["commands"] if c["mutates"] and c["returncode"] == 0]


def reset(setup: dict[str, str]) -> None:
    for name in lvs():
        subprocess.run(["lvremove", "-q", "-y", f"{VG}/{name}"], check=True, capture_output=True)  # test reset
    for name, size in setup.items():
        subprocess.run(["lvcreate", "-q", "--name", name, "--size", size, VG], check=True, capture_output=True)


def no_lock(tmp: Path) -> None:
    locks = tmp / "locks"
    assert held_locks(locks) == [], "a lock was left"


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_lvm_change_fails_before_and_after_it_ran_and_a_rerun_converges(name: str, site: Path,
                                                                             tmp_path: Path) -> None:
    runbook, setup, params, confirm, step, goal = CASES[name]
    reset(setup)
    before = lvs()
    cli, rec = kvmops_run(tmp_path, runbook, site, params, confirm, {})
    assert cli.returncode == 0, cli.stderr
    assert lvs() == goal
    (change,) = changes(rec)
    for when in ("before", "after"):
        reset(setup)
        cli, rec = kvmops_run(tmp_path, runbook, site, params, confirm, fault_env(1, "", when))
        assert cli.returncode == 1 and f"FAILED at step {step!r}" in cli.stderr, (when, cli.stderr)
        assert "injected fault" in cli.stderr, cli.stderr
        assert [c["command"] for c in rec["commands"] if c["returncode"] == FAULT_EXIT] == [change]
        no_lock(tmp_path)
        assert lvs() == (goal if when == "after" else before), when
        cli, rec = kvmops_run(tmp_path, runbook, site, params, confirm, {})
        assert cli.returncode == 0, cli.stderr
        assert lvs() == goal
        assert changes(rec) == ([] if when == "after" else [change]), (when, changes(rec))
        no_lock(tmp_path)
