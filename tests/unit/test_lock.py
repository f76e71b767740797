"""The per-guest lock: a second run refuses (or waits) with a clear message; always released."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvmops.lock import GuestLocked, guest_lock
from kvmops.runners import LocalRunner


def test_second_run_refuses_naming_the_holder(tmp_path: Path) -> None:
    base = str(tmp_path / "lock")
    with guest_lock(LocalRunner(), "test1", "run guest-create", base=base):
        assert (tmp_path / "lock" / "test1" / "owner").read_text().endswith("run guest-create\n")
        locked = r"guest test1 is locked by another run: .*pid=\d+ .*guest-create"
        with pytest.raises(GuestLocked, match=locked), guest_lock(LocalRunner(), "test1", "snapshot", base=base):
            pytest.fail("a second holder got in")
        with guest_lock(LocalRunner(), "test2", "other guest", base=base):
            pass  # other guests are independent
    assert not (tmp_path / "lock" / "test1").exists()


def test_released_after_a_failure(tmp_path: Path) -> None:
    base = str(tmp_path / "lock")
    with pytest.raises(RuntimeError), guest_lock(LocalRunner(), "test1", "x", base=base):
        raise RuntimeError("step failed")
    assert not (tmp_path / "lock" / "test1").exists()


def test_waiter_gets_the_lock_when_the_first_run_ends(tmp_path: Path) -> None:
    base = str(tmp_path / "lock")
    code = (
        "import time, sys\n"
        "from kvmops.lock import guest_lock\nfrom kvmops.runners import LocalRunner\n"
        f"with guest_lock(LocalRunner(), 'test1', 'first', base={base!r}):\n"
        "    print('held', flush=True); time.sleep(1.5)\n"
    )
    first = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with guest_lock(LocalRunner(), "test1", "second", wait=30, base=base, poll=0.1):
            waited = time.monotonic() - t0
        assert waited > 1.0  # the first run held it for 1.5 s
    finally:
        first.wait(timeout=30)
    assert first.returncode == 0


def test_bad_guest_name_never_reaches_a_command(tmp_path: Path) -> None:
    runner = LocalRunner()
    with pytest.raises(Exception, match="guest name"), guest_lock(runner, "../etc", "x", base=str(tmp_path)):
        pass
    assert not any("etc" in r.command for r in runner.records)
