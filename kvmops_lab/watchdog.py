"""A lab whose kernel hangs ends the tests that wait on it, with the reason, in minutes.

Under TCG the lab's kernel once stalled for good: CPU 0 stopped taking interrupts while a nested
guest ran (``rcu: INFO: rcu_preempt detected stalls on CPUs/tasks`` every 63 s), and every SSH
command to the lab waited for it until CI's 90 minutes ran out. The watchdog follows the lab's
serial console. A kernel panic, or a CPU still reported stalled ``STALL_SECONDS`` after its
first report without having handled one softirq since (a stall under load passes, and the CPU's
softirq count moves on), means the lab is gone: the watchdog says so and kills the lab's QEMU,
so that the SSH commands waiting on it end and their test fails.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kvmops_lab import procs
from kvmops_lab.paths import LabPaths
from kvmops_lab.qmp import qmp
from kvmops_lab.state import read_state

STALL_SECONDS = 240.0
_STAMP = r"\[\s*(\d+\.\d+)\]\s*"
# the detail line of a stall report: the CPU, and how many softirqs it has handled so far
_STALLED_CPU = re.compile(_STAMP + r"rcu:\s+(\d+)-\S+: [^\n]*?softirq=(\d+/\d+)[^\n]*")
_PANIC = re.compile(_STAMP + r"Kernel panic[^\n]*")


@dataclass
class Verdict:
    """What the console says: ``hung`` with the lines that show it, or not."""

    hung: bool = False
    lines: list[str] = field(default_factory=list)


def judge(console: str, stall_seconds: float = STALL_SECONDS) -> Verdict:
    """A panic, or one CPU reported stalled ``stall_seconds`` apart without handling a single
    softirq in between (pure). Stalls that pass, however many, handle softirqs between them."""
    panic = _PANIC.search(console)
    if panic:
        return Verdict(True, [panic.group(0)])
    first: dict[tuple[str, str], re.Match[str]] = {}
    for report in _STALLED_CPU.finditer(console):
        cpu, softirqs = report.group(2), report.group(3)
        start = first.setdefault((cpu, softirqs), report)
        span = float(report.group(1)) - float(start.group(1))
        if span >= stall_seconds:
            return Verdict(True, [start.group(0), f"... CPU {cpu} still stalled {span:.0f} s later, "
                                  f"not one softirq handled since (softirq={softirqs})", report.group(0)])
    return Verdict()


class LabWatchdog:
    """Follows the serial console of the lab at ``paths`` from a thread; see the module."""

    def __init__(self, paths: LabPaths, say: Callable[[str], None], interval: float = 10.0) -> None:
        self.paths = paths
        self.say = say
        self.interval = interval
        self.findings: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="lab-watchdog", daemon=True)

    def __enter__(self) -> LabWatchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def check(self) -> Verdict:
        """One look at the console (the whole file: a lab booted again starts a new one)."""
        try:
            console = self.paths.serial.read_text(errors="replace")
        except OSError:
            return Verdict()
        verdict = judge(console)
        if verdict.hung:
            self._stop_lab(verdict)
        return verdict

    def _stop_lab(self, verdict: Verdict) -> None:
        state = read_state(self.paths.state)
        pid = state.pid if state is not None else 0
        if not pid or not procs.is_lab_qemu(procs.cmdline(pid), self.paths.run):
            return  # already gone (or a lab booted again meanwhile, whose console is not this one)
        kept = self._keep_evidence()
        os.kill(pid, signal.SIGKILL)
        self.findings = [*verdict.lines, f"lab QEMU pid {pid} killed: the tests waiting on it fail now",
                         f"its console and vCPU registers kept in {kept}"]
        self.say("lab watchdog: the lab's kernel hung:\n    " + "\n    ".join(self.findings))

    def _keep_evidence(self) -> Path:
        """The console and every vCPU's registers (QEMU's monitor), in a folder of the cache
        that outlives the run folder (a session's lab is destroyed at its end)."""
        kept = self.paths.root / f"hung-{self.paths.name or 'lab'}-{time.strftime('%Y%m%dT%H%M%S')}"
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.paths.serial, kept / "serial.log")
        try:
            answer = qmp(self.paths.qmp, "human-monitor-command", arguments={"command-line": "info registers -a"})
            registers = str(answer.get("return", answer))
        except (OSError, ValueError) as exc:
            registers = f"QEMU's monitor did not answer: {exc}"
        (kept / "registers.txt").write_text(registers)
        return kept

