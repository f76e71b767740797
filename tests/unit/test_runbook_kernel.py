"""The kernel runbooks run in (kvmops/runbook/kernel.py): ipykernel over IPC, stopped without
noise. The windows of the shutdown races it closes are held open here
(tests/support/kernel_delays.py; a cell that cleans up after an interrupt), so the checks do
not depend on luck. The stock kernel under the same conditions shows each race, which proves
the window was open (if it stops doing so, ipykernel has changed: see whether kvmops' kernel is
still needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager

from kvmops.runbook.discover import KERNEL
from kvmops.runbook.ipc import NAME

STOCK = "python3"
RACE = "Socket operation on non-socket"
INTERRUPTED = "KeyboardInterrupt caught in kernel"


def _probe(tmp_path: Path, kernel: str, scenario: str, delays: bool = False) -> tuple[dict[str, Any], str, str]:
    log = tmp_path / f"{kernel}-{scenario}.log"
    argv = [sys.executable, "-m", "tests.support.kernel_probe", kernel, scenario] + ([str(log)] if delays else [])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr, log.read_text() if log.exists() else ""


def test_the_kernel_spec_names_kvmops_kernel_and_the_ipc_provisioner() -> None:
    spec = KernelSpecManager().get_kernel_spec(KERNEL["name"])
    assert spec.argv[1:3] == ["-m", "kvmops.runbook.kernel"]
    assert spec.metadata["kernel_provisioner"]["provisioner_name"] == NAME
    assert spec.display_name == KERNEL["display_name"]


def test_a_kernel_runs_over_ipc_quietly_and_leaves_nothing(tmp_path: Path) -> None:
    seen, stderr, _ = _probe(tmp_path, KERNEL["name"], "run")
    assert seen["reply"] == "ok"
    assert seen["transport"] == "ipc" and Path(seen["ip"]).parent.name.startswith("kvmops-kernel-")
    assert not seen["ipc_folder_left"]
    assert stderr == ""


def test_the_control_thread_finishes_before_the_kernel_exits(tmp_path: Path) -> None:
    _, _, held = _probe(tmp_path, STOCK, "run", delays=True)
    assert "the IOPub thread stopped meanwhile" in held and f"raised ZMQError: {RACE}" in held, \
        "ipykernel's race changed: " + held
    _, ours, held = _probe(tmp_path, KERNEL["name"], "run", delays=True)
    assert "control thread paused in IOPubThread.schedule: the IOPub thread kept running" in held
    assert ours == ""


def test_an_interrupt_after_a_reply_is_ignored(tmp_path: Path) -> None:
    _, stock, held = _probe(tmp_path, STOCK, "interrupt-after-reply", delays=True)
    assert "paused after its reply: interrupted" in held and INTERRUPTED in stock, "ipykernel changed: " + held
    seen, ours, held = _probe(tmp_path, KERNEL["name"], "interrupt-after-reply", delays=True)
    assert "paused after its reply: not interrupted" in held and seen["after"] == "ok"
    assert ours == ""


def test_a_shutdown_during_a_cell_lets_the_cell_end_first(tmp_path: Path) -> None:
    _, stock, _ = _probe(tmp_path, STOCK, "shutdown-in-cell")
    assert RACE in stock, "ipykernel no longer shows the race of a shutdown during a cell"
    _, ours, _ = _probe(tmp_path, KERNEL["name"], "shutdown-in-cell")
    assert ours == ""


def test_an_interrupt_still_stops_a_running_cell(tmp_path: Path) -> None:
    seen, stderr, _ = _probe(tmp_path, KERNEL["name"], "interrupt-cell")
    assert (seen["reply"], seen["ename"]) == ("error", "KeyboardInterrupt")
    assert stderr == ""
