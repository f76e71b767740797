"""The run locks: a second run refuses (or waits) naming the holder; always released; a lock
whose holder died is no lock (a flock held by a process that lives as long as the run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvmops.errors import CommandFailed
from kvmops.executor import HoldLock
from kvmops.lock import GuestLocked, RunLocks, guest_lock, lock_keys
from kvmops.runners import LocalRunner
from kvmops.safety.effects import Effect
from kvmops.site import load_site

HOLD = (
    "import sys, time\n"
    "from kvmops.lock import guest_lock\nfrom kvmops.runners import LocalRunner\n"
    "with guest_lock(LocalRunner(), 'test1', 'first', base=sys.argv[1]):\n"
    "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n"
)


def _holder(base: Path, seconds: float) -> subprocess.Popen[str]:
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(base), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None and first.stdout.readline().strip() == "held"
    return first


def test_second_run_refuses_naming_the_holder(tmp_path: Path) -> None:
    first = _holder(tmp_path, 300)  # another run: another process
    try:
        assert (tmp_path / "guest-test1.owner").read_text().endswith("first\n")
        locked = r"guest test1 is locked by another run that is alive: .*pid=\d+ .*first"
        with pytest.raises(GuestLocked, match=locked), guest_lock(LocalRunner(), "test1", "snapshot",
                                                                   base=str(tmp_path)):
            pytest.fail("a second holder got in")
        with guest_lock(LocalRunner(), "test2", "other guest", base=str(tmp_path)):
            pass  # other guests are independent
    finally:
        first.kill()
        first.wait(timeout=30)
        assert first.stdout is not None
        first.stdout.close()


def test_the_same_run_takes_its_own_lock_again(tmp_path: Path) -> None:
    """A runbook cell's lock around a plan whose executor takes the same lock: one run."""
    with guest_lock(LocalRunner(), "test1", "outer", base=str(tmp_path)):
        with guest_lock(LocalRunner(), "test1", "inner", base=str(tmp_path)):
            pass
        assert (tmp_path / "guest-test1.owner").read_text().endswith("outer\n")  # still held
        first = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "0"], stdout=subprocess.PIPE, text=True)
        out, _ = first.communicate(timeout=60)
        assert first.returncode != 0 and "held" not in out  # another process still cannot get it
    assert not (tmp_path / "guest-test1.owner").exists()


def test_released_after_a_failure(tmp_path: Path) -> None:
    base = str(tmp_path / "lock")
    with pytest.raises(RuntimeError), guest_lock(LocalRunner(), "test1", "x", base=base):
        raise RuntimeError("step failed")
    with guest_lock(LocalRunner(), "test1", "y", base=base):
        pass


def test_a_lock_whose_owner_line_failed_is_let_go_at_once(tmp_path: Path) -> None:
    """The owner line cannot be written (its folder is a file now): the run fails, and its flock
    does not stay held until the process ends (a notebook kernel lives on)."""
    base = tmp_path / "lock"
    base.mkdir()
    (base / "guest-test1.owner").mkdir()  # tee cannot write a folder
    with pytest.raises(CommandFailed), guest_lock(LocalRunner(), "test1", "x", base=str(base)):
        pytest.fail("the block ran without an owner line")
    (base / "guest-test1.owner").rmdir()
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(base), "0"], stdout=subprocess.PIPE, text=True)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 0 and "held" in out  # another process gets it


def test_waiter_gets_the_lock_when_the_first_run_ends(tmp_path: Path) -> None:
    first = _holder(tmp_path, 1.5)
    try:
        t0 = time.monotonic()
        with guest_lock(LocalRunner(), "test1", "second", wait=30, base=str(tmp_path), poll=0.1):
            waited = time.monotonic() - t0
        assert waited > 0.5  # the first run held it
    finally:
        first.wait(timeout=30)
        assert first.stdout is not None
        first.stdout.close()
    assert first.returncode == 0


def test_a_run_that_died_holds_no_lock(tmp_path: Path) -> None:
    """The holder is killed (no cleanup runs): its flock ends with its pipe; its owner file
    stays behind and says nothing any more."""
    first = _holder(tmp_path, 300)
    with pytest.raises(GuestLocked, match="alive"), guest_lock(LocalRunner(), "test1", "x", base=str(tmp_path)):
        pass
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert first.stdout is not None
    first.stdout.close()
    assert (tmp_path / "guest-test1.owner").exists()  # stale, and harmless
    with guest_lock(LocalRunner(), "test1", "after the crash", wait=10, base=str(tmp_path), poll=0.2):
        assert (tmp_path / "guest-test1.owner").read_text().endswith("after the crash\n")


def test_bad_guest_name_never_reaches_a_command(tmp_path: Path) -> None:
    runner = LocalRunner()
    with pytest.raises(Exception, match="guest name"), guest_lock(runner, "../etc", "x", base=str(tmp_path)):
        pass
    assert runner.records == []
    with pytest.raises(Exception, match="bad lock name"):
        RunLocks(runner, "x", str(tmp_path)).take(["../etc"])


def test_the_locks_of_a_plans_effects() -> None:
    site = load_site()
    effects = [Effect("snapshot", "rl_build/vmweb1", "h", 1, ""), Effect("create", "rl_build/vmweb1-20261130T0815Z",
                                                                        "h", 1, ""),
               Effect("start", "db1", "h", 2, ""), Effect("write-file", "/root/kvm/web-2.xml", "h", 3, ""),
               Effect("delete-bridge", "virbr1.2368", "h", 4, ""), Effect("grow", "rl_build/root", "h", 5, "")]
    assert lock_keys(site, effects) == ["bridge-virbr1.2368", "guest-db1", "guest-web-2", "guest-web1"]


def test_the_locks_of_held_disks() -> None:
    """A procedure that holds a disk (grow, tweaks) locks the LV's guest, or the image file."""
    site = load_site()
    held = [HoldLock("rl_build/vmweb1"), HoldLock("/srv/images/base.raw"), HoldLock("rl_build/root")]
    assert lock_keys(site, held) == ["guest-web1", "image-base.raw"]
