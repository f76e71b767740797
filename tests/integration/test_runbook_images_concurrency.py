"""Two `kvmops run ... --apply` at once against the same guest on a real scratch VG (issue 9,
part 3): the second refuses naming the holder and changes nothing; another guest is not
blocked; the first finishes; the lock folder is gone afterwards.

To make the overlap certain (not a race the test may lose on a slow machine), the first run
finds a ``lvresize`` first on its PATH that waits for a release file, then runs the real
``lvresize``: the run holds the guest's lock exactly as long as the test wants.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_tools
from tests.integration.test_runbook_storage import SITE, VG, lvs
from tests.support.locks import held_locks
from tests.support.loop import scratch_vg

pytestmark = pytest.mark.integration
M = 1024**2

HOLD = """#!/bin/sh
# test shim: hold the first run inside its lock until the test releases it (max 120 s)
n=0
while [ ! -e {release} ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done
exec {real} "$@"
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    need_tools("lvm", "losetup")
    (tmp_path / "node.xml").write_text("<node/>\n")
    (tmp_path / "site.toml").write_text(SITE)
    with scratch_vg(tmp_path, VG, "256M"):
        yield tmp_path / "site.toml"


def kvmops(site: Path, runbook: str, *params: str) -> list[str]:
    """``kvmops run RUNBOOK --site SITE --apply -q -p NAME VALUE ...``"""
    return [sys.executable, "-m", "kvmops.cli.main", "run", runbook, "--site", str(site), "--apply", "-q", *params]


def _recorded(owner: Path) -> bool:
    try:
        return bool(owner.read_text().strip())
    except FileNotFoundError:
        return False


def test_second_run_on_the_same_guest_refuses_and_changes_nothing(site: Path, tmp_path: Path) -> None:
    locks, journal, release = tmp_path / "locks", tmp_path / "journal", tmp_path / "release"
    env = {**os.environ, "KVMOPS_LOCK_DIR": str(locks), "KVMOPS_JOURNAL": str(journal)}
    subprocess.run(["lvcreate", "-q", "--name", "vmt1", "--size", "64m", VG], check=True, capture_output=True)
    shim = tmp_path / "bin"
    shim.mkdir()
    real = shutil.which("lvresize")
    assert real is not None
    (shim / "lvresize").write_text(HOLD.format(release=release, real=real))
    (shim / "lvresize").chmod(0o755)
    slow = {**env, "PATH": f"{shim}:{env['PATH']}"}

    first = subprocess.Popen(kvmops(site, "lv-resize", "-p", "guest", "t1", "-p", "size", "96m"),
                             env=slow, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        owner = locks / "guest-t1.owner"
        deadline = time.monotonic() + 120
        # the owner line is written just after the lock is taken (`tee` creates the file, then writes)
        while not _recorded(owner) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _recorded(owner), "the first run never took the lock and recorded its owner"
        holder = owner.read_text().strip()
        assert holder.endswith("resize LV rbtest/vmt1 from 64.00 MiB to 96.00 MiB") and "pid=" in holder  # its plan

        second = subprocess.run(kvmops(site, "lv-resize", "-p", "guest", "t1", "-p", "size", "128m"),
                                env=env, capture_output=True, text=True, timeout=180)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "FAILED at step 'Resize the LV'" in second.stderr
        assert "guest t1 is locked by another run that is alive: " + holder in second.stderr
        assert lvs() == {"vmt1": 64 * M}  # the second changed nothing; the first is still held

        other = subprocess.run(kvmops(site, "lv-create", "-p", "guest", "t2", "-p", "size", "32m"),
                               env=env, capture_output=True, text=True, timeout=180)
        assert other.returncode == 0, other.stdout + other.stderr  # another guest is not blocked
    finally:
        release.touch()
        out, err = first.communicate(timeout=180)
    assert first.returncode == 0, out + err
    assert lvs() == {"vmt1": 96 * M, "vmt2": 32 * M}
    assert held_locks(locks) == []

    records = [json.loads(p.read_text()) for p in journal.glob("*/record.json")]
    refused = [r for r in records if r["status"] == "failed"]
    assert len(refused) == 1 and refused[0]["params"]["size"] == "128m"
    assert not [c for c in refused[0]["commands"] if c["mutates"] and c["executed"]]
