"""Offline tweaks on real partitioned images (xfs on GPT, ext4 on DOS with /boot) holding a
real Debian tree; every result read back independently of kvmops."""

from __future__ import annotations

import configparser
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.errors import InvalidInput, NotFound
from kvmops.facts import read_facts
from kvmops.facts.disk import open_disk
from kvmops.facts.images import probe
from kvmops.host import Host
from kvmops.images import tweaks as t
from kvmops.images.passwords import Password, sha512_crypt, verify
from kvmops.net.address import static_address
from kvmops.procedures import disks
from kvmops.runners import LocalRunner, PlanRunner
from kvmops.site import load_site
from tests.conftest import need_tools
from tests.support.images import EXT4_DOS, XFS_GPT, cached_image, leftovers, mounted_root, put_files
from tests.support.secrets import PASSWORDS

pytestmark = pytest.mark.integration

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"
LAYOUTS = {"xfs-gpt": (XFS_GPT, 1), "ext4-dos": (EXT4_DOS, 2)}
ADDRESS = static_address(load_site(None), "test1", 2368, "10.5.68.237")
FIX = Path(__file__).parent.parent / "fixtures" / "images"
NM = "/etc/NetworkManager/system-connections"


@pytest.fixture(autouse=True)
def _nothing_left(tmp_path: Path) -> Iterator[None]:
    need_tools("losetup", "partx", "sfdisk", "mkfs.xfs", "mkfs.ext4", "chroot", "debootstrap", "qemu-img")
    yield
    assert leftovers(tmp_path) == ([], []), "a loop device or mount was left behind"


@pytest.fixture(params=sorted(LAYOUTS))
def image(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, int]:
    layout, root = LAYOUTS[request.param]
    return cached_image(request.param, layout, tmp_path), root


def _host(apply: bool) -> Host:
    real = LocalRunner()
    return Host(load_site(None), real if apply else PlanRunner(real), "test:///default")


def _tweaks(root_hash: str) -> list[t.Tweak]:
    return [
        t.SetPassword(Password.hashed("root", root_hash)),
        t.SetPassword(Password.clear("centos", PASSWORDS["centos"])),
        t.AuthorizedKeys("centos", (KEY,)),
        t.Sudoers("centos"),
        t.SerialGetty(),
        t.GrubSerial(),
        t.StaticIp.from_address(ADDRESS),
        t.SelinuxRelabel(),
    ]


def test_tweaks_apply_read_back_and_converge(image: tuple[Path, int], site_vg: str) -> None:
    path, part = image
    put_files(path, part, {"/etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
                           "/etc/cloud/cloud.cfg.d/README": "x\n"})
    root_hash = sha512_crypt(PASSWORDS["root"])
    host = _host(apply=True)
    first = disks.tweak_image(host, read_facts(host), _tweaks(root_hash), image=str(path), progress=lambda _l: None)
    assert all(": changed: " in line for line in first.lines), first.render()
    assert "Debian" in first.os

    with mounted_root(path, part) as root:
        shadow = dict(line.split(":")[:2] for line in (root / "etc/shadow").read_text().splitlines())
        assert shadow["root"] == root_hash
        assert verify(PASSWORDS["centos"], shadow["centos"])
        ssh = root / "home/centos/.ssh"
        keys = ssh / "authorized_keys"
        assert keys.read_text() == KEY + "\n"
        assert (os.stat(ssh).st_mode & 0o777, os.stat(ssh).st_uid, os.stat(ssh).st_gid) == (0o700, 1000, 1000)
        assert (os.stat(keys).st_mode & 0o777, os.stat(keys).st_uid, os.stat(keys).st_gid) == (0o600, 1000, 1000)
        sudo = root / "etc/sudoers.d/centos"
        assert (os.stat(sudo).st_mode & 0o777, os.stat(sudo).st_uid, os.stat(sudo).st_gid) == (0o440, 0, 0)
        assert subprocess.run(["chroot", str(root), "visudo", "-c"], capture_output=True).returncode == 0
        assert not list((root / "etc/sudoers.d").glob("*.kvmops-new"))
        link = root / t.GETTY_LINK.lstrip("/")
        assert os.readlink(link) == "/lib/systemd/system/serial-getty@.service"
        grub = (root / "etc/default/grub").read_text()
        assert 'GRUB_TERMINAL="serial console"' in grub and "console=ttyS0,115200n8" in grub
        cfg = (root / "boot/grub/grub.cfg") if part == 1 else None
        nm = root / "etc/NetworkManager/system-connections/eth0.nmconnection"
        parsed = configparser.ConfigParser(interpolation=None)
        parsed.read_string(nm.read_text())
        assert parsed["ipv4"]["address1"] == "10.5.68.237/24,10.5.68.254"
        assert os.stat(nm).st_mode & 0o777 == 0o600
        assert (root / "etc/cloud/cloud.cfg.d/99-kvmops-network.cfg").read_text() == "network: {config: disabled}\n"
        assert (root / ".autorelabel").exists()
        assert (root / "proc").is_dir() and not os.listdir(root / "proc"), "proc left bound"
        if cfg is not None:
            assert "serial --speed=115200" in cfg.read_text()
    if part == 2:  # /boot is its own partition there: grub.cfg went onto it
        with mounted_root(path, 1) as boot:
            assert "serial --speed=115200" in (boot / "grub/grub.cfg").read_text()

    again = disks.tweak_image(host, read_facts(host), _tweaks(root_hash), image=str(path), progress=lambda _l: None)
    assert all("already so" in line for line in again.lines), again.render()
    recorded = "\n".join(r.command for r in host.runner.records)
    assert PASSWORDS["centos"] not in recorded and root_hash not in recorded


def test_plan_mode_changes_nothing(image: tuple[Path, int], site_vg: str) -> None:
    path, _part = image
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    host = _host(apply=False)
    report = disks.tweak_image(host, read_facts(host), _tweaks(sha512_crypt("x")), image=str(path),
                           progress=lambda _l: None)
    assert any(": planned: " in line for line in report.lines)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not any(r.executed for r in host.runner.records if r.mutates)


def test_missing_user_is_refused_and_nothing_left(image: tuple[Path, int], site_vg: str) -> None:
    path, part = image
    with pytest.raises(InvalidInput, match="'rocky' does not exist.*centos"):
        host = _host(apply=True)
        disks.tweak_image(host, read_facts(host), [t.SerialGetty(), t.AuthorizedKeys("rocky", (KEY,))],
                      image=str(path), progress=lambda _l: None)
    with mounted_root(path, part) as root:
        assert not (root / t.GETTY_LINK.lstrip("/")).is_symlink(), "a tweak ran before the refusal"


def test_bad_sources(tmp_path: Path, site_vg: str) -> None:
    runner = LocalRunner()
    with pytest.raises(NotFound, match="does not exist"):
        probe(runner, str(tmp_path / "missing.qcow2"))
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(InvalidInput, match="not a disk image"):
        probe(runner, str(text))
    blank = tmp_path / "blank.raw"
    subprocess.run(["truncate", "-s", "64M", str(blank)], check=True)
    facts = read_facts(_host(apply=False))
    with pytest.raises(InvalidInput, match="no partition table"), open_disk(runner, facts, image=str(blank)):
        pass


def _ids(root: Path, user: str) -> tuple[int, int, str, str]:
    """uid, gid, home, shell of ``user`` in the image's own /etc/passwd."""
    for line in (root / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            return int(f[2]), int(f[3]), f[5], f[6]
    raise AssertionError(f"no user {user} in the image")


def test_the_login_user_is_created_like_cloud_init_when_the_image_lacks_it(image: tuple[Path, int],
                                                                           site_vg: str) -> None:
    path, part = image
    put_files(path, part, {"/etc/cloud/cloud.cfg": (FIX / "cloud" / "rocky9-cloud.cfg").read_text()})
    host = _host(apply=True)
    todo: list[t.Tweak] = [t.LoginUser("rocky"), t.SetPassword(Password.clear("rocky", PASSWORDS["centos"])),
                           t.AuthorizedKeys("rocky", (KEY,)), t.Sudoers("rocky")]
    planned = disks.tweak_image(_host(apply=False), read_facts(host), todo, image=str(path), progress=lambda _l: None)
    assert "the image has no user rocky: it is created like cloud-init would: groups adm, shell /bin/bash" \
        in planned.render()
    first = disks.tweak_image(host, read_facts(host), todo, image=str(path), progress=lambda _l: None)
    assert all(": changed: " in line for line in first.lines), first.render()

    with mounted_root(path, part) as root:
        uid, gid, home, shell = _ids(root, "rocky")
        assert (home, shell) == ("/home/rocky", "/bin/bash") and uid >= 1000
        groups = {ln.split(":")[0]: ln.split(":")[3].split(",") for ln in (root / "etc/group").read_text().splitlines()}
        assert "rocky" in groups["adm"]  # the image's cloud.cfg asks adm and systemd-journal: only adm exists
        assert "systemd-journal" not in groups
        st = os.stat(root / "home/rocky")
        assert (st.st_uid, st.st_gid) == (uid, gid)
        keys = root / "home/rocky/.ssh/authorized_keys"
        assert keys.read_text() == KEY + "\n"
        assert (os.stat(keys).st_mode & 0o777, os.stat(keys).st_uid, os.stat(keys).st_gid) == (0o600, uid, gid)
        assert (os.stat(keys.parent).st_mode & 0o777, os.stat(keys.parent).st_uid) == (0o700, uid)
        shadow = dict(line.split(":")[:2] for line in (root / "etc/shadow").read_text().splitlines())
        assert verify(PASSWORDS["centos"], shadow["rocky"])
        assert (root / "etc/sudoers.d/rocky").read_text().startswith("rocky  ALL=(ALL)")

    again = disks.tweak_image(host, read_facts(host), todo, image=str(path), progress=lambda _l: None)
    assert all("already so" in line for line in again.lines), again.render()


def test_an_existing_networkmanager_profile_is_changed_not_doubled(site_vg: str, tmp_path: Path) -> None:
    path = cached_image("xfs-gpt", XFS_GPT, tmp_path)
    profile = f"{NM}/cloud-init-eth0.nmconnection"
    put_files(path, 1, {profile: (FIX / "nm" / "cloud-init-eth0.nmconnection").read_text()})
    host = _host(apply=True)
    disks.tweak_image(host, read_facts(host), [t.StaticIp.from_address(ADDRESS)], image=str(path),
                  progress=lambda _l: None)
    with mounted_root(path, 1) as root:
        assert sorted(p.name for p in (root / NM.lstrip("/")).iterdir()) == ["cloud-init-eth0.nmconnection"]
        parsed = configparser.ConfigParser(interpolation=None)
        parsed.read_string((root / profile.lstrip("/")).read_text())
        # bound by MAC it stays: no interface-name added (it would bind no NIC named otherwise)
        assert parsed["connection"]["id"] == "cloud-init eth0" and "interface-name" not in parsed["connection"]
        assert parsed["ethernet"]["mac-address"] == "52:54:00:4F:1A:07"
        assert dict(parsed["ipv4"]) == {"method": "manual", "may-fail": "false",
                                        "address1": "10.5.68.237/24,10.5.68.254", "dns": "132.230.200.200;"}
        assert os.stat(root / profile.lstrip("/")).st_mode & 0o777 == 0o600
    again = disks.tweak_image(host, read_facts(host), [t.StaticIp.from_address(ADDRESS)], image=str(path),
                          progress=lambda _l: None)
    assert again.lines[0].startswith("static address for NIC 1 (eth0): already so"), again.render()
