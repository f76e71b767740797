"""The lab watchdog (kvmops_lab.watchdog) on the console of the lab that hung CI: its kernel
reported the same RCU stall every 63 s for 70 min while a test waited on SSH."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops_lab import procs
from kvmops_lab.paths import LabPaths
from kvmops_lab.state import LabState
from kvmops_lab.watchdog import LabWatchdog, judge
from tests.conftest import need_tools

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lab"
HUNG = (FIXTURES / "lab-serial-rcu-stall-hung.log").read_text()


def _until(text: str, uptime: str) -> str:
    """The console as it stood when the kernel's clock reached ``uptime`` (a prefix of it)."""
    return text[: text.index(f"[{uptime}")]


def test_a_stall_reported_for_four_minutes_is_a_hung_lab() -> None:
    verdict = judge(HUNG)
    assert verdict.hung
    assert verdict.lines[0].startswith("[  839.888625] rcu: \t0-...0: (0 ticks this GP)")
    assert verdict.lines[1] == ("... CPU 0 still stalled 252 s later, not one softirq handled since "
                                "(softirq=89682/89682)")


def test_a_stall_that_is_young_or_passed_is_not() -> None:
    assert not judge(_until(HUNG, " 1028.948102")).hung  # reported for 126 s so far
    assert judge(_until(HUNG, " 1154.988058")).hung  # 252 s: still the same stall
    assert not judge((FIXTURES / "lab-serial.log").read_text()).hung  # a lab that booted
    first = _until(HUNG, "  902.908072")  # the first report alone, then the CPU went on
    passed = first.replace("softirq=89682/89682", "softirq=91034/91034").replace("  839.88", " 1500.88")
    assert not judge(first + passed).hung  # two stalls 11 min apart, softirqs handled between


def test_a_kernel_panic_is_a_hung_lab() -> None:
    console = "[   12.5] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n"
    assert judge(console).lines == ["[   12.5] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100"]


def _lab_run_by(tmp_path: Path, pid: int) -> LabPaths:
    """A run folder whose state file names ``pid`` as the lab's QEMU."""
    paths = LabPaths(tmp_path)
    paths.run.mkdir(exist_ok=True)
    state = LabState(pid=pid, port=2222, accel="tcg", image_dir="", run_dir=str(paths.run), key="",
                     known_hosts="", site="", serial=str(paths.serial), qmp=str(paths.qmp), started="")
    paths.state.write_text(state.to_json())
    return paths


@pytest.fixture
def lab_qemu(tmp_path: Path) -> Iterator[tuple[LabPaths, subprocess.Popen[bytes]]]:
    """A real QEMU as the lab runs it (its monitor and files in the run folder), paused."""
    need_tools("qemu-system-x86_64")
    monitor = LabPaths(tmp_path).qmp
    monitor.parent.mkdir()
    proc = subprocess.Popen(["qemu-system-x86_64", "-S", "-nodefaults", "-display", "none", "-accel", "tcg",
                             "-qmp", f"unix:{monitor},server=on,wait=off"])
    paths = _lab_run_by(tmp_path, proc.pid)
    deadline = time.monotonic() + 30
    while not paths.qmp.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield paths, proc
    proc.kill()
    proc.wait()


def test_the_watchdog_kills_a_hung_lab_and_keeps_the_evidence(
        lab_qemu: tuple[LabPaths, subprocess.Popen[bytes]]) -> None:
    paths, proc = lab_qemu
    told: list[str] = []
    dog = LabWatchdog(paths, told.append, interval=0.1)
    paths.serial.write_text(_until(HUNG, " 1028.948102"))
    assert not dog.check().hung and procs.alive(proc.pid)  # a young stall: the lab goes on
    paths.serial.write_text(HUNG)
    with dog:
        assert proc.wait(timeout=20) == -9
    assert dog.findings[-2] == f"lab QEMU pid {proc.pid} killed: the tests waiting on it fail now"
    kept = next(paths.root.glob("hung-lab-*"))
    assert (kept / "serial.log").read_text() == HUNG
    assert "CPU#0" in (kept / "registers.txt").read_text()  # QEMU's own monitor answered
    assert "(0 ticks this GP)" in told[0] and str(kept) in told[0]


def test_the_watchdog_leaves_a_process_that_is_not_the_lab_alone(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        paths = _lab_run_by(tmp_path, other.pid)
        paths.serial.write_text(HUNG)
        dog = LabWatchdog(paths, lambda _t: None)
        assert dog.check().hung and not dog.findings
        assert procs.alive(other.pid)
    finally:
        other.kill()
        other.wait()
