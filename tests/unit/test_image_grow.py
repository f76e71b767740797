"""Grow plans: the in-guest commands, the host-side steps from facts."""

from __future__ import annotations

import pytest

from kvmops.errors import InvalidInput
from kvmops.images import grow
from kvmops.images.disk import Disk
from kvmops.images.mount import Filesystem
from kvmops.images.partitions import Partition


def test_inside_the_guest_xfs() -> None:
    plan = grow.guest_grow_plan()
    assert [s.cmd.argv for s in plan.steps if s.cmd] == [
        ("growpart", "/dev/vda", "1"), ("partprobe", "/dev/vda"), ("xfs_growfs", "/")]


def test_inside_the_guest_ext4_nvme() -> None:
    plan = grow.guest_grow_plan("/dev/nvme0n1", 2, "ext4")
    assert plan.steps[-1].cmd is not None and plan.steps[-1].cmd.argv == ("resize2fs", "/dev/nvme0n1p2")


@pytest.mark.parametrize("args", [("/dev/vda; rm", 1, "xfs"), ("/dev/vda", 0, "xfs"), ("/dev/vda", 1, "vfat")])
def test_bad_in_guest_input(args: tuple[str, int, str]) -> None:
    with pytest.raises(InvalidInput):
        grow.guest_grow_plan(*args)


def _fs(node: str, fstype: str) -> Filesystem:
    return Filesystem(Partition(1, node, 2048, 1000000), fstype)


def test_host_partition_steps_for_a_kpartx_mapping() -> None:
    fs = _fs("/dev/mapper/rl_build-vmtest1p1", "xfs")
    disk = Disk("/dev/mapper/rl_build-vmtest1", "rl_build/vmtest1", (fs.partition,), True)
    plan = grow.part_plan(disk, fs.partition, grow_part=True)
    assert [s.cmd.argv for s in plan.steps if s.cmd] == [
        ("sfdisk", "--no-reread", "--no-tell-kernel", "-N", "1", "/dev/mapper/rl_build-vmtest1"),
        ("kpartx", "-u", "-p", "p", "/dev/mapper/rl_build-vmtest1"),
    ]  # growpart cannot grow a partition of a device-mapper disk (it looks for /dev/dm-01)
    assert plan.steps[0].cmd is not None and plan.steps[0].cmd.stdin == ", +\n"
    assert grow.part_plan(disk, fs.partition, grow_part=False).empty


def test_room_after_a_partition() -> None:
    p1, p2 = Partition(1, "/dev/x1", 2048, 2048), Partition(2, "/dev/x2", 8192, 2048)
    assert grow.room_after(20480 * 512, "dos", p1, (p1, p2)) == (8192 - 4096) * 512
    assert grow.room_after(10240 * 512, "dos", p2, (p1, p2)) == 0
    assert grow.room_after(20480 * 512, "gpt", p2, (p1, p2)) == (20480 - 10240 - 33) * 512


def test_fs_steps_converge() -> None:
    xfs = grow.fs_plan(_fs("/dev/loop0p1", "xfs"), "/run/kvmops/mnt-abc", grown=True, part_size=1, fs_bytes=1)
    assert [s.cmd.argv for s in xfs.steps if s.cmd] == [("xfs_growfs", "/run/kvmops/mnt-abc")]
    ext = _fs("/dev/loop0p2", "ext4")
    assert grow.fs_plan(ext, "", grown=False, part_size=10 << 20, fs_bytes=10 << 20).empty
    half = grow.fs_plan(ext, "", grown=False, part_size=20 << 20, fs_bytes=10 << 20)
    assert [s.cmd.argv for s in half.steps if s.cmd] == [
        ("e2fsck", "-f", "-p", "/dev/loop0p2"), ("resize2fs", "/dev/loop0p2")]
