"""guest-create's offline tweaks (setup=tweaks) on a real partitioned image holding a real
Debian tree: root's authorized_keys next to the login user's, and the SELinux relabel that
files written offline need (issue 14, items 1 and 6). Read back independently of kvmops."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.facts import read_facts
from kvmops.host import Host
from kvmops.images.passwords import verify
from kvmops.procedures import disks
from kvmops.procedures import guest_create as gc
from kvmops.runners import LocalRunner
from kvmops.site import load_site
from tests.conftest import need_tools
from tests.support.images import XFS_GPT, cached_image, leftovers, mounted_root, put_files
from tests.support.secrets import PASSWORDS

pytestmark = pytest.mark.integration

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"
ROOT_KEY = KEY.replace("admin@example", "root@example")


@pytest.fixture(autouse=True)
def _nothing_left(tmp_path: Path) -> Iterator[None]:
    need_tools("losetup", "partx", "sfdisk", "mkfs.xfs", "chroot", "debootstrap", "qemu-img")
    yield
    assert leftovers(tmp_path) == ([], []), "a loop device or mount was left behind"


def test_root_keys_and_the_relabel_land_in_the_image(tmp_path: Path, site_vg: str) -> None:
    image = cached_image("xfs-gpt", XFS_GPT, tmp_path)
    put_files(image, 1, {"/etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n"})
    site = load_site()
    req = gc.request(site, "web2", vlans="2368,223", memory="1g", vcpus=1, size="1g", image=str(image),
                     setup="tweaks", address="10.5.68.237", keys=KEY, root_keys=ROOT_KEY,
                     root_password=PASSWORDS["root"], sudo=True)
    host = Host(site, LocalRunner(), "test:///default")
    report = disks.tweak_image(host, read_facts(host), gc.tweaks(req), image=str(image), progress=lambda _l: None)
    user, *rest = report.lines  # this image already has the login user: only that tweak is a no-op
    assert user.startswith("login user centos: already so"), report.render()
    assert rest and all(": changed: " in line for line in rest), report.render()
    with mounted_root(image, 1) as root:
        keys = root / "root/.ssh/authorized_keys"
        assert keys.read_text() == ROOT_KEY + "\n"
        assert (os.stat(keys).st_mode & 0o777, os.stat(keys).st_uid) == (0o600, 0)
        assert os.stat(root / "root/.ssh").st_mode & 0o777 == 0o700
        assert (root / "home/centos/.ssh/authorized_keys").read_text() == KEY + "\n"
        shadow = dict(line.split(":")[:2] for line in (root / "etc/shadow").read_text().splitlines())
        assert verify(PASSWORDS["root"], shadow["root"])
        assert (root / ".autorelabel").exists()  # written last, after every other file
        assert (root / "etc/NetworkManager/system-connections/eth0.nmconnection").exists()
    again = disks.tweak_image(host, read_facts(host), gc.tweaks(req), image=str(image), progress=lambda _l: None)
    assert all("already so" in line for line in again.lines), again.render()
