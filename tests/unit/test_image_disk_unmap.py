"""Unmapping a guest LV's partitions after a write: udev's probe of the closed partition makes
``kpartx -d`` say "is in use" for a moment (seen in the lab after guest-resize's xfs_growfs);
the undo lets udev settle and tries again, and still fails on a device that stays busy."""

from __future__ import annotations

import pytest

from kvmops.cmd import Cmd, Result
from kvmops.errors import CommandFailed
from kvmops.facts import disk as facts_disk
from kvmops.images import partitions as pt
from kvmops.runners.base import LineSink, Runner

DEV = "/dev/mapper/rl_build-vme2e1"
IN_USE = "rl_build-vme2e1p1 is in use. Not removing\n"


class BusyKpartx(Runner):
    """``kpartx -d`` answers "in use" ``busy`` times, then succeeds; everything is recorded."""

    def __init__(self, busy: int) -> None:
        super().__init__()
        self.host = "lab"
        self.busy = busy
        self.argvs: list[tuple[str, ...]] = []

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        self.argvs.append(cmd.argv)
        if cmd.argv[:2] == ("kpartx", "-d") and self.busy > 0:
            self.busy -= 1
            return Result(cmd, self.host, 1, "", IN_USE, 0.0)
        return Result(cmd, self.host, 0, "", "", 0.0)


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(facts_disk.time, "sleep", lambda _s: None)


def test_a_partition_busy_for_a_moment_is_unmapped_after_udev_settled() -> None:
    runner = BusyKpartx(busy=1)
    facts_disk._undo(runner, [pt.kpartx_delete(DEV)])
    assert runner.argvs == [("kpartx", "-d", "-v", "-p", "p", DEV), ("udevadm", "settle", "--timeout=10"),
                            ("kpartx", "-d", "-v", "-p", "p", DEV)]


def test_a_partition_that_stays_busy_still_fails_the_undo() -> None:
    runner = BusyKpartx(busy=99)
    with pytest.raises(CommandFailed, match="is in use"):
        facts_disk._undo(runner, [pt.kpartx_delete(DEV)])
    assert runner.argvs.count(("kpartx", "-d", "-v", "-p", "p", DEV)) == 1 + facts_disk.BUSY_RETRIES


def test_other_failures_are_not_retried() -> None:
    class Broken(BusyKpartx):
        def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
            self.argvs.append(cmd.argv)
            return Result(cmd, self.host, 1, "", "kpartx: no such device\n", 0.0)

    runner = Broken(0)
    with pytest.raises(CommandFailed):
        facts_disk._undo(runner, [pt.kpartx_delete(DEV)])
    assert runner.argvs == [("kpartx", "-d", "-v", "-p", "p", DEV)]
