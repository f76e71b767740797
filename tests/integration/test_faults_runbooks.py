"""Faults: runbooks run for real with their commands failing in turn (``$KVMOPS_FAULT_AT``).

Each faulty run goes through ``kvmops run`` and must exit 1 naming the step; afterwards no
loop device, partition mapping, mount (/proc/mounts) or guest lock may be left, the state is
the one before (or a consistent part of the goal), and a re-run without the fault reaches
the goal, checked independently of kvmops (``lvs``; the image mounted by the test itself).

Covered:
- lv-create, lv-resize, lv-remove on a scratch VG: each mutating command in turn (one each;
  N+1 is run too and must succeed, proving the count), plus the lock's own commands;
- image-tweak on an ext4 image with /boot: the first mutating command of each kind (losetup,
  the read-write mount, /boot rw, chpasswd, dd, visudo, mv, ln, the proc and /dev mounts of
  grub-mkconfig, grub-mkconfig, their umount, the last command): 13 of 33 (the full product
  takes ~8 min on 2 shared cores; the rest repeat a kind already covered); the attach,
  the mounts, mv and chpasswd also fail after they ran (a losetup that took a device and
  then failed gave it back only since this test asked);
- guest-inspect (nothing mutates): each setup command of the read-only mapping in turn.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kvmops.runners.faults import FAULT_EXIT
from tests.conftest import need_tools
from tests.integration.test_runbook_images import KEY, assert_tweaked
from tests.integration.test_runbook_images import site as image_site
from tests.integration.test_runbook_storage import SITE as LV_SITE
from tests.integration.test_runbook_storage import VG, lvs
from tests.support.faults import fault_env
from tests.support.images import EXT4_DOS, cached_image, leftovers, mounted_root
from tests.support.locks import held_locks
from tests.support.loop import scratch_vg
from tests.support.secrets import PASSWORDS

pytestmark = pytest.mark.integration
M = 1024**2
PASSWORD = PASSWORDS["tweak"]


def kvmops_run(tmp: Path, runbook: str, site: Path, params: dict[str, str], *, fault: int | None = None,
               match: str = "", confirm: str | None = None, env: dict[str, str] | None = None,
               when: str = "before") -> subprocess.CompletedProcess[str]:
    """``kvmops run RUNBOOK --apply`` with live progress; its output is kept in ``tmp`` (the
    session's secret scan reads it)."""
    argv = [sys.executable, "-m", "kvmops.cli.main", "run", runbook, "--site", str(site), "--apply"]
    argv += [a for k, v in params.items() for a in ("-p", k, v)]
    argv += ["--confirm", confirm] if confirm else []
    full = {**os.environ, "KVMOPS_JOURNAL": str(tmp / "journal"), "KVMOPS_LOCK_DIR": str(tmp / "locks"),
            **(env or {}), **fault_env(fault, match, when)}
    cli = subprocess.run(argv, capture_output=True, text=True, env=full, timeout=300)
    n = len(list(tmp.glob("cli-*.log")))
    (tmp / f"cli-{n + 1}.log").write_text(f"$ {' '.join(argv)}\n{cli.stdout}\n--- stderr\n{cli.stderr}")
    return cli


def last_record(tmp: Path) -> dict[str, Any]:
    records = sorted((tmp / "journal").glob("*/record.json"), key=lambda p: p.stat().st_mtime)
    rec: dict[str, Any] = json.loads(records[-1].read_text())
    return rec


def failed_command(rec: dict[str, Any]) -> str:
    (cmd,) = [c["command"] for c in rec["commands"] if c["returncode"] == FAULT_EXIT]
    return str(cmd)


def assert_failed_at(cli: subprocess.CompletedProcess[str], step: str) -> None:
    assert cli.returncode == 1, cli.stdout[-2000:] + cli.stderr
    assert f"FAILED at step {step!r}" in cli.stderr, cli.stderr
    assert "injected fault" in cli.stderr, cli.stderr


def assert_clean(tmp: Path, keep_loops: tuple[str, ...] = ()) -> None:
    loops, mounts = leftovers(tmp)
    assert [ln for ln in loops if not any(k in ln for k in keep_loops)] == [], loops
    assert mounts == [], mounts
    assert not any(" /run/kvmops/" in ln for ln in Path("/proc/mounts").read_text().splitlines())
    locks = tmp / "locks"
    assert held_locks(locks) == [], "a lock was left"


# ----------------------------------------------------------------- LVM runbooks
@pytest.fixture
def lv_site(tmp_path: Path) -> Iterator[Path]:
    need_tools("lvm", "losetup")
    (tmp_path / "node.xml").write_text("<node/>\n")
    (tmp_path / "site.toml").write_text(LV_SITE)
    with scratch_vg(tmp_path, VG, "256M"):
        yield tmp_path / "site.toml"


def lvcreate(name: str, size: str) -> None:
    subprocess.run(["lvcreate", "-q", "--name", name, "--size", size, VG], check=True, capture_output=True)


def lvremove_all() -> None:
    for name in lvs():
        subprocess.run(["lvremove", "-q", "-y", f"{VG}/{name}"], check=True, capture_output=True)  # test reset


LV_CASES = {
    # runbook: (setup LVs, params, confirm, step, before, goal)
    "lv-create": ({}, {"guest": "t1", "size": "64m"}, None, "Create the LV", {}, {"vmt1": 64 * M}),
    "lv-resize": ({"vmt1": "64m"}, {"guest": "t1", "size": "96m"}, None, "Resize the LV",
                  {"vmt1": 64 * M}, {"vmt1": 96 * M}),
    "lv-remove": ({"vmt1": "32m"}, {"lv": "vmt1"}, f"{VG}/vmt1", "Remove the LV", {"vmt1": 32 * M}, {}),
}


@pytest.mark.parametrize("runbook", sorted(LV_CASES))
def test_lv_runbooks_fail_cleanly_at_each_mutating_command_and_converge(runbook: str, lv_site: Path,
                                                                         tmp_path: Path) -> None:
    setup, params, confirm, step, before, goal = LV_CASES[runbook]
    pv = str(tmp_path / "pv.img")
    n = 1
    while True:
        lvremove_all()
        for name, size in setup.items():
            lvcreate(name, size)
        cli = kvmops_run(tmp_path, runbook, lv_site, params, fault=n, confirm=confirm)
        assert_clean(tmp_path, keep_loops=(pv,))
        if cli.returncode == 0:  # N is past the last mutating command: no fault happened
            assert lvs() == goal
            break
        assert_failed_at(cli, step)
        assert failed_command(last_record(tmp_path)).split()[0] in ("lvcreate", "lvresize", "lvremove")
        assert lvs() == before, "a failed LVM command changed nothing"
        again = kvmops_run(tmp_path, runbook, lv_site, params, confirm=confirm)
        assert again.returncode == 0, again.stderr
        assert lvs() == goal
        assert_clean(tmp_path, keep_loops=(pv,))
        n += 1
    assert n == 2, f"{runbook} has {n - 1} mutating commands, expected exactly one"


LOCK_COMMANDS = r"^(mkdir -p -m 0700 |tee \S+\.owner )"


@pytest.mark.parametrize("n", [1, 2])  # the lock folder, the owner line (the flock is no runner command)
def test_a_failing_lock_command_leaves_no_lock_and_no_lv(n: int, lv_site: Path, tmp_path: Path) -> None:
    cli = kvmops_run(tmp_path, "lv-create", lv_site, {"guest": "t1", "size": "64m"}, fault=n, match=LOCK_COMMANDS)
    assert_failed_at(cli, "Create the LV")
    assert re.match(LOCK_COMMANDS, failed_command(last_record(tmp_path)))
    assert lvs() == {}
    assert_clean(tmp_path, keep_loops=(str(tmp_path / "pv.img"),))
    again = kvmops_run(tmp_path, "lv-create", lv_site, {"guest": "t1", "size": "64m"})
    assert again.returncode == 0, again.stderr
    assert lvs() == {"vmt1": 64 * M}


# ----------------------------------------------------------------- image-tweak
TWEAK = {"guest": "web1", "keys": KEY, "address": "10.5.68.237"}
SAME_AS_DD = {"install", "chown", "chmod", "mkdir", "mount -t sysfs"}
"""Kinds left out to keep the run short: they fail at the same place of a file's steps as
``dd`` (or as the proc mount), so they add no new path out."""
AFTER_KINDS = {"losetup", "mount", "mv", "chpasswd"}
"""Kinds also failed after they ran: what took a device or a mount must give it back, and a
change that did happen must read as done on the re-run."""


def kind(command: str) -> str:
    """``chroot MNT dd of=...`` -> ``dd``; ``mount -t proc ...`` -> ``mount -t proc``."""
    words = command.split()
    if words[0] == "chroot":
        return Path(words[2]).name
    if words[0] in ("mount", "umount"):
        return " ".join(w for w in words[:3] if not w.startswith("/run/kvmops/")) + (
            " /boot" if words[-1].endswith("/boot") else "")
    return words[0]


def tweak_goal(image: Path) -> None:
    """Every tweak in place, read by the test itself; no temporary file left."""
    with mounted_root(image, 2) as mnt:
        assert_tweaked(mnt, PASSWORD)
        half = [str(p) for p in mnt.rglob("*.kvmops-new")]
        assert half == [], half


def test_image_tweak_fails_cleanly_at_each_kind_of_mutating_command_and_converges(tmp_path: Path,
                                                                               site_vg: str) -> None:
    need_tools("losetup", "partx", "sfdisk", "mkfs.ext4", "chroot", "debootstrap", "qemu-img")
    env = {"KVMOPS_SECRET_PASSWORD": PASSWORD}
    reference = cached_image("ext4-dos", EXT4_DOS, tmp_path)
    site_file = image_site(tmp_path, reference, running=False)
    clean = kvmops_run(tmp_path, "image-tweak", site_file, {**TWEAK, "image": str(reference)}, env=env)
    assert clean.returncode == 0, clean.stderr
    tweak_goal(reference)
    executed = [c["command"] for c in last_record(tmp_path)["commands"] if c["mutates"] and c["executed"]]
    firsts: dict[str, int] = {}
    for i, command in enumerate(executed, 1):
        firsts.setdefault(kind(command), i)
    chosen = sorted({i for k, i in firsts.items() if k not in SAME_AS_DD} | {len(executed)})
    assert len(chosen) >= 12, firsts
    reference.unlink()
    after = [n for n in chosen if kind(executed[n - 1]).split()[0] in AFTER_KINDS]
    assert after, firsts
    for n, when in [(n, "before") for n in chosen] + [(n, "after") for n in after]:
        image = cached_image("ext4-dos", EXT4_DOS, tmp_path)
        params = {**TWEAK, "image": str(image)}
        cli = kvmops_run(tmp_path, "image-tweak", site_file, params, fault=n, env=env, when=when)
        assert_failed_at(cli, "Apply the tweaks")
        assert kind(failed_command(last_record(tmp_path))) == kind(executed[n - 1])
        assert PASSWORD not in cli.stdout + cli.stderr
        assert_clean(tmp_path)
        again = kvmops_run(tmp_path, "image-tweak", site_file, params, env=env)
        assert again.returncode == 0, f"re-run after fault #{n} {when} ({executed[n - 1]}): {again.stderr}"
        assert_clean(tmp_path)
        tweak_goal(image)
        image.unlink()


# ----------------------------------------------------------------- guest-inspect
SETUP = r"^(losetup --find|sfdisk -J /dev/loop|partx --add|blkid |mkdir -p -m 700 |mktemp |mount |chroot \S+ cat /etc/)"


def test_guest_inspect_fails_cleanly_at_each_setup_command(tmp_path: Path, site_vg: str) -> None:
    need_tools("losetup", "partx", "sfdisk", "mkfs.ext4", "chroot", "debootstrap", "qemu-img")
    image = cached_image("ext4-dos", EXT4_DOS, tmp_path)
    site_file = image_site(tmp_path, image, running=False)
    before = subprocess.run(["sha256sum", str(image)], capture_output=True, text=True, check=True).stdout
    clean = kvmops_run(tmp_path, "guest-inspect", site_file, {"guest": "web1", "image": str(image)})
    assert clean.returncode == 0, clean.stderr
    count = sum(1 for c in last_record(tmp_path)["commands"] if c["executed"] and re.search(SETUP, c["command"]))
    assert count >= 10
    tolerated = []
    for n in range(1, count + 1):
        cli = kvmops_run(tmp_path, "guest-inspect", site_file, {"guest": "web1", "image": str(image)},
                         fault=n, match=SETUP)
        failed = failed_command(last_record(tmp_path))
        if cli.returncode == 0:
            tolerated.append(failed)  # a command kvmops runs unchecked on purpose
        else:
            assert_failed_at(cli, "Inspect the disk")
        assert_clean(tmp_path)
    assert [t.split()[:2] for t in tolerated] == [["partx", "--add"]], tolerated  # falls back to partx --update
    again = kvmops_run(tmp_path, "guest-inspect", site_file, {"guest": "web1", "image": str(image)})
    assert again.returncode == 0 and "PRETTY_NAME=Debian GNU/Linux 12 (bookworm)" in again.stdout, again.stderr
    assert subprocess.run(["sha256sum", str(image)], capture_output=True, text=True, check=True).stdout == before
