"""Grow (real growpart + xfs_growfs/resize2fs), copy (qemu-img onto a loop device standing in
for the LV: no device-mapper here), and the NoCloud seed written to a file and read back."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kvmops.errors import CommandFailed, ConfirmationRequired
from kvmops.facts import grow as grow_facts
from kvmops.facts import read_facts
from kvmops.facts.images import probe
from kvmops.host import Host
from kvmops.images import grow, nocloud
from kvmops.images.copy import compare_cmd, copy_to_device
from kvmops.images.passwords import Password
from kvmops.procedures import disks
from kvmops.progress import thinned
from kvmops.runners import LocalRunner
from kvmops.site import load_site
from tests.conftest import need_tools
from tests.support.images import EXT4_DOS, XFS_GPT, cached_image, leftovers, mounted_root
from tests.support.loop import disk_node
from tests.support.run import run_plan

pytestmark = pytest.mark.integration
MiB = 1 << 20


@pytest.fixture(autouse=True)
def _nothing_left(tmp_path: Path) -> Iterator[None]:
    need_tools("losetup", "partx", "growpart", "xfs_growfs", "resize2fs", "qemu-img", "debootstrap")
    yield
    assert leftovers(tmp_path) == ([], []), "a loop device or mount was left behind"


def _host(**folders: str) -> Host:
    """The guide's site on the test driver; ``folders``: the site's folders the test writes in."""
    return Host(replace(load_site(None), **folders), LocalRunner(), "test:///default")


def _fs_bytes(image: Path, part: int) -> int:
    with mounted_root(image, part) as root:
        out = subprocess.run(["df", "-B1", "--output=size", str(root)], capture_output=True, text=True,
                             check=True).stdout
    return int(out.split()[-1])


@pytest.mark.parametrize("name, layout, part", [("xfs-gpt", XFS_GPT, 1), ("ext4-dos", EXT4_DOS, 2)])
def test_grow_in_two_phases_fills_the_grown_disk(tmp_path: Path, name: str, layout: object, part: int,
                                                 site_vg: str) -> None:
    image = cached_image(name, layout, tmp_path)  # type: ignore[arg-type]
    before = _fs_bytes(image, part)
    subprocess.run(["truncate", "-s", "+256M", str(image)], check=True)
    seen = grow_facts.look(LocalRunner(), read_facts(_host()), image=str(image))  # read-only: plan mode does this
    first, second = grow.preview(seen)
    assert [s.cmd.argv[0] for s in first.steps if s.cmd] == ["growpart", "partx"]
    fs_cmds = ["xfs_growfs"] if name.startswith("xfs") else ["e2fsck", "resize2fs"]
    assert [s.cmd.argv[0] for s in second.steps if s.cmd] == fs_cmds
    assert _fs_bytes(image, part) == before  # looking changed nothing

    ran = disks.grow(_host(), read_facts(_host()), image=str(image), progress=lambda _l: None)
    assert [[s.cmd.argv[0] for s in p.steps if s.cmd] for p in ran] == [["growpart", "partx"], fs_cmds]
    after = _fs_bytes(image, part)
    assert after - before > 200 * MiB, (before, after)  # of 256 MiB added; ext4 keeps some for metadata
    again = disks.grow(_host(), read_facts(_host()), image=str(image), progress=lambda _l: None)
    assert all(p.empty for p in again), [p.render() for p in again]
    grown = grow_facts.look(LocalRunner(), read_facts(_host()), image=str(image))
    assert grown.room <= grow.SLACK and grown.fs_bytes is not None and grown.part_size - grown.fs_bytes <= grow.SLACK


def test_copy_qcow2_onto_a_device_verified(tmp_path: Path, site_vg: str) -> None:
    raw = cached_image("xfs-gpt", XFS_GPT, tmp_path)
    qcow = tmp_path / "guest.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow)], check=True)
    info = probe(LocalRunner(), str(qcow))
    assert (info.format, info.virtual_size) == ("qcow2", raw.stat().st_size)
    target = tmp_path / "lv.img"
    subprocess.run(["truncate", "-s", "400M", str(target)], check=True)
    dev = subprocess.run(["losetup", "--find", "--show", str(target)], capture_output=True, text=True,
                         check=True).stdout.strip()
    try:
        # stale data beyond the image's end must not matter
        subprocess.run(["dd", "if=/dev/urandom", f"of={dev}", "bs=1M", "seek=380", "count=4", "status=none"],
                       check=True)
        node = disk_node(tmp_path / "disks", dev)  # the same disk inside the site's file_disk_dir
        plan = copy_to_device(info, node, 400 * MiB, target="test/vmcopy")
        host = _host(file_disk_dir=str(tmp_path / "disks"))
        with pytest.raises(ConfirmationRequired):
            run_plan(host, plan, progress=lambda _l: None)
        seen: list[str] = []
        run_plan(host, plan, "test/vmcopy", progress=thinned(seen.append))
        assert "100%" in seen and any("identical" in s for s in seen)
        same = subprocess.run(["cmp", "-n", str(raw.stat().st_size), str(raw), dev])
        assert same.returncode == 0
        subprocess.run(["dd", "if=/dev/urandom", f"of={dev}", "bs=1M", "seek=2", "count=1", "status=none",
                        "conv=notrunc"], check=True)
        with pytest.raises(CommandFailed, match="mismatch"):
            LocalRunner().run(compare_cmd(info, dev))
    finally:
        subprocess.run(["losetup", "--detach", dev], check=True)


def test_seed_iso_written_on_the_host_reads_back(tmp_path: Path, site_vg: str) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"
    seed = nocloud.Seed("test1", nocloud.users_for("centos", [key], Password.clear("centos", "pw-x")),
                        (nocloud.StaticNet("10.5.68.237/24", "10.5.68.254"),))
    path = tmp_path / "test1-cidata.iso"
    host = _host(seed_dir=str(tmp_path))
    plan = nocloud.seed_plan(seed, str(path))
    run_plan(host, plan, progress=lambda _l: None)
    assert path.stat().st_mode & 0o777 == 0o600
    vol, files = nocloud.read_iso(path.read_bytes())
    assert vol == "cidata" and files == seed.files()
    blkid = subprocess.run(["blkid", "-p", "-o", "export", str(path)], capture_output=True, text=True).stdout
    assert re.search(r"^TYPE=iso9660$", blkid, re.M) and re.search(r"^LABEL=cidata$", blkid, re.M)
    assert "pw-x" not in "\n".join(r.command for r in host.runner.records)
