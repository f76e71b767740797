"""The disk runbooks for real on image files (loop + partx here; kpartx on LVs is the lab's):
guest-inspect, guest-unreachable and image-tweak against a local site whose guests live in a
libvirt test-driver file and use the image file as their disk. Every result is read back
independently of kvmops; nothing may stay attached or mounted, also after a failure."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.images.passwords import verify
from kvmops.lock import guest_lock
from kvmops.runbook.execute import run_runbook
from kvmops.runbook.journal import RunRecord
from kvmops.runners import LocalRunner
from tests.conftest import need_tools
from tests.support.images import EXT4_DOS, XFS_GPT, cached_image, leftovers, mounted_root, put_files
from tests.support.locks import held_locks
from tests.support.secrets import PASSWORDS

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("site_vg")]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"
PASSWORD = PASSWORDS["tweak"]
LAYOUTS = {"xfs-gpt": (XFS_GPT, 1), "ext4-dos": (EXT4_DOS, 2)}
SYSLOG = "".join(f"Nov 25 10:{i:02d}:00 web1 kernel: syslog line {i}\n" for i in range(1, 51))

SITE = """[host]
name = "images"

[storage]
vg = "rl_build"  # the scratch VG of the site_vg fixture
lv_prefix = "vm"

[libvirt]
uri = "test://{site_dir}/node.xml"
domain_type = "qemu"

[images]
login_user = "centos"

[network]
uplink = "ens802f1"
dns = ["132.230.200.200"]

[[network.vlan]]
id = 2368
cidr = "10.5.68.0/24"
"""

NODE = """<node xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
  <domain type="test">
    <name>web1</name>
    <memory unit="KiB">524288</memory>
    <vcpu>1</vcpu>
    <os><type arch="x86_64">hvm</type></os>
    <devices>
      <disk type="file" device="disk">
        <driver name="qemu" type="raw"/>
        <source file="{image}"/>
        <target dev="vda" bus="virtio"/>
      </disk>
      <interface type="bridge">
        <mac address="52:54:00:5a:68:01"/><source bridge="virbr1.2368"/><model type="virtio"/>
      </interface>
      <serial type="pty"><log file="{log}" append="on"/><target port="0"/></serial>
    </devices>
    <test:runstate>{runstate}</test:runstate>
  </domain>
</node>
"""


@pytest.fixture(autouse=True)
def _nothing_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    need_tools("losetup", "partx", "sfdisk", "mkfs.xfs", "mkfs.ext4", "chroot", "debootstrap", "qemu-img")
    monkeypatch.setenv("KVMOPS_LOCK_DIR", str(tmp_path / "locks"))
    yield
    assert leftovers(tmp_path) == ([], []), "a loop device or mount was left behind"
    assert held_locks(tmp_path / "locks") == [], "a lock was left"


@pytest.fixture(params=sorted(LAYOUTS))
def image(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, int]:
    layout, root = LAYOUTS[request.param]
    path = cached_image(request.param, layout, tmp_path)
    put_files(path, root, {"/var/log/syslog": SYSLOG})
    return path, root


def site(tmp_path: Path, image: Path, running: bool) -> Path:
    (tmp_path / "node.xml").write_text(NODE.format(image=image, log=tmp_path / "serial.log",
                                                   runstate=1 if running else 5))
    (tmp_path / "site.toml").write_text(SITE)
    return tmp_path / "site.toml"


def run(site_file: Path, name: str, *, apply: bool = False, confirm: str | None = None,
        **params: object) -> RunRecord:
    return run_runbook(name, dict(params), site=str(site_file), apply=apply, confirm=confirm,
                       journal_dir=site_file.parent / "journal")


def output(rec: RunRecord) -> str:
    cells = json.loads(Path(rec.notebook).read_text())["cells"]
    return "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     for c in cells for o in c.get("outputs", []))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------- guest-inspect
def test_inspect_shows_table_os_fstab_accounts_last_log_lines_and_df(image: tuple[Path, int], tmp_path: Path) -> None:
    path, root = image
    put_files(path, root, {"/home/centos/.ssh/authorized_keys": KEY + "\n"})
    before = digest(path)
    rec = run(site(tmp_path, path, running=False), "guest-inspect", guest="web1", image=str(path), lines=5)
    assert rec.status == "ok", rec.error
    out = output(rec)
    table = out.split("== partition table (as mapped)\n", 1)[1].split("\n\n", 1)[0]
    assert table.split()[:3] == ["NR", "START", "END"] and len(table.splitlines()) == 1 + root  # partx --show
    assert out.index("partx --show -- ") < out.index("losetup --find --show --read-only")  # shown before
    accounts = out.split("== accounts (login shells)\n", 1)[1].split("\n\n", 1)[0]
    assert "root (uid 0, /bin/bash): password " in accounts
    assert "centos (uid 1000, /bin/bash): password " in accounts and "1 key(s): admin@example" in accounts
    assert "$6$" not in out and "$y$" not in out  # no hash, ever
    assert 'PRETTY_NAME=Debian GNU/Linux 12 (bookworm)' in out
    assert "== /etc/fstab\nLABEL=root / " in out
    assert "== last lines of /var/log/syslog" in out
    assert "syslog line 50" in out and "syslog line 46" in out and "syslog line 45\n" not in out
    assert "== df" in out and "/run/kvmops/mnt-" in out
    if "ext4" in path.name:
        assert "LABEL=boot /boot ext4" in out
        df = out.split("== df", 1)[1]
        assert "/boot" in df  # /boot of the same disk mounted below the root, shown by df
    assert "ok: " in out and "is unmounted and unmapped again" in out
    assert [c["command"].split()[0] for c in rec.commands if c["mutates"]] == []
    assert any(c["command"].startswith("losetup --find --show --read-only") and c["executed"]
               for c in rec.commands)
    assert digest(path) == before  # read-only: not one byte changed


def test_inspect_refuses_the_image_of_a_running_guest(tmp_path: Path) -> None:
    path = cached_image("xfs-gpt", XFS_GPT, tmp_path)
    rec = run(site(tmp_path, path, running=True), "guest-inspect", guest="other", image=str(path))
    assert rec.status == "failed" and rec.failed_step == "Check preconditions"
    assert "is a disk of running guest(s) web1" in (rec.error or "")
    assert not any(c["command"].startswith("losetup") for c in rec.commands)


def test_inspect_failure_unmaps_everything(tmp_path: Path) -> None:
    blank = tmp_path / "blank.raw"
    subprocess.run(["truncate", "-s", "64M", str(blank)], check=True)
    subprocess.run(["sfdisk", "-q", str(blank)], input="label: gpt\ntype=L\n", text=True, check=True)
    rec = run(site(tmp_path, blank, running=False), "guest-inspect", guest="web1", image=str(blank))
    assert rec.status == "failed" and rec.failed_step == "Inspect the disk"
    assert "no partition holds a Linux filesystem" in (rec.error or "")
    undo = [c["command"].split()[:2] for c in rec.commands
            if c["command"].startswith(("partx --delete", "losetup --d"))]
    assert undo == [["partx", "--delete"], ["losetup", "--detach"]]


def test_inspect_waits_for_no_run_that_changes_the_guest(tmp_path: Path) -> None:
    path = cached_image("xfs-gpt", XFS_GPT, tmp_path)
    site_file = site(tmp_path, path, running=False)
    with guest_lock(LocalRunner(), "web1", "image-tweak (held by the test)"):
        rec = run(site_file, "guest-inspect", guest="web1", image=str(path))
    assert rec.status == "failed" and rec.failed_step == "Inspect the disk"
    assert "guest web1 is locked by another run that is alive: " in (rec.error or "")
    assert "image-tweak (held by the test)" in (rec.error or "")
    assert not any(c["command"].startswith("losetup") for c in rec.commands)


# ----------------------------------------------------------------- guest-unreachable
def test_unreachable_shut_off_guest_serial_log_and_disk(tmp_path: Path) -> None:
    path = cached_image("ext4-dos", EXT4_DOS, tmp_path)
    put_files(path, 2, {"/var/log/syslog": SYSLOG})
    (tmp_path / "serial.log").write_text("Booting Linux\nKernel panic - not syncing: VFS: Unable to mount root fs\n")
    rec = run(site(tmp_path, path, running=False), "guest-unreachable", guest="web1", lines=3)
    assert rec.status == "ok", rec.error
    out = output(rec)
    assert "web1   shut off" in out or "web1  shut off" in out
    assert "no console to read" in out
    assert "Kernel panic - not syncing" in out  # the serial log file, read on the host
    assert "syslog line 50" in out and "syslog line 47\n" not in out  # the disk, read-only
    assert "seen: disk: Debian GNU/Linux 12 (bookworm)" in out
    assert "action=start" in out
    assert "the kernel panicked: read the lines before the panic" in out  # computed from the serial log


def test_unreachable_destroy_needs_confirm_then_inspects(tmp_path: Path) -> None:
    path = cached_image("xfs-gpt", XFS_GPT, tmp_path)
    put_files(path, 1, {"/var/log/syslog": SYSLOG})
    site_file = site(tmp_path, path, running=True)
    rec = run(site_file, "guest-unreachable", apply=True, guest="web1", destroy=True, seconds=1.0)
    assert rec.status == "failed" and rec.failed_step == "Force the guest off"
    assert "confirm='web1'" in (rec.error or "")
    assert "cannot open consoles" in output(rec)  # the test driver: a clear note, not a failure
    assert not any(c["command"].startswith("losetup") for c in rec.commands)

    rec = run(site_file, "guest-unreachable", apply=True, confirm="web1", guest="web1", destroy=True, seconds=1.0)
    assert rec.status == "ok", rec.error
    out = output(rec)
    assert "done: force guest web1 off" in out
    assert "syslog line 50" in out and "PRETTY_NAME=Debian GNU/Linux 12 (bookworm)" in out


# ----------------------------------------------------------------- image-tweak
def test_tweak_apply_read_back_converge(image: tuple[Path, int], tmp_path: Path) -> None:
    path, root = image
    site_file = site(tmp_path, path, running=False)
    rec = run(site_file, "image-tweak", apply=True, guest="web1", image=str(path), password=PASSWORD,
              keys=KEY, address="10.5.68.237")
    assert rec.status == "ok", f"{rec.failed_step}: {rec.error}"
    out = output(rec)
    plan_at, apply_at = out.index("==> Plan the tweaks"), out.index("==> Apply the tweaks")
    assert "chpasswd -e <<< REDACTED" in out[plan_at:apply_at]  # the plan came first
    assert "ok: every tweak is in place" in out

    with mounted_root(path, root) as mnt:
        assert_tweaked(mnt, PASSWORD)
    for f in (site_file.parent / "journal").rglob("*"):
        if f.is_file():
            assert PASSWORD not in f.read_text(errors="replace"), f

    again = run(site_file, "image-tweak", apply=True, guest="web1", image=str(path), password=PASSWORD,
                keys=KEY, address="10.5.68.237")
    assert again.status == "ok", again.error
    applied = output(again).split("==> Apply the tweaks", 1)[1].split("==> Verify", 1)[0]
    assert "changed:" not in applied and applied.count("already so") >= 5, applied


def test_tweak_refused_while_the_guest_runs(tmp_path: Path) -> None:
    path = cached_image("xfs-gpt", XFS_GPT, tmp_path)
    before = digest(path)
    rec = run(site(tmp_path, path, running=True), "image-tweak", apply=True, guest="web1", image=str(path))
    assert rec.status == "failed" and rec.failed_step == "Check preconditions"
    assert "guest web1 is running" in (rec.error or "")
    assert digest(path) == before


def assert_tweaked(mnt: Path, password: str) -> None:
    """Read the tweaks of image-tweak back from a mounted image, independently of kvmops."""
    shadow = dict(line.split(":")[:2] for line in (mnt / "etc/shadow").read_text().splitlines())
    assert verify(password, shadow["centos"])
    assert (mnt / "home/centos/.ssh/authorized_keys").read_text() == KEY + "\n"
    sudo = mnt / "etc/sudoers.d/centos"
    assert (os.stat(sudo).st_mode & 0o777, os.stat(sudo).st_uid) == (0o440, 0)
    assert os.readlink(mnt / "etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service") \
        == "/lib/systemd/system/serial-getty@.service"
    assert "console=ttyS0,115200n8" in (mnt / "etc/default/grub").read_text()
    keyfile = (mnt / "etc/NetworkManager/system-connections/eth0.nmconnection").read_text()
    assert "address1=10.5.68.237/24,10.5.68.254" in keyfile
