"""Grow plans: the in-guest commands; the two host phases planned purely from disk facts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kvmops.errors import InvalidInput
from kvmops.images import grow
from kvmops.images.imagefs import PLACEHOLDER
from kvmops.images.mount import Filesystem
from kvmops.images.partitions import Partition

MiB = 1 << 20


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


def disk(device: str, node: str, fstype: str, *, size: int = 1024 * MiB, sectors: int = 1000000,
         fs_bytes: int | None = None) -> grow.DiskFacts:
    """A disk with one partition (start 2048) holding the root filesystem."""
    part = Partition(1, node, 2048, sectors)
    source = "rl_build/vmtest1" if device.startswith("/dev/mapper/") else "/srv/img.raw"
    return grow.DiskFacts(source, device, size, "gpt", (part,), Filesystem(part, fstype), part.size,
                          part.size if fs_bytes is None else fs_bytes)


def cmds(plan: object) -> list[tuple[str, ...]]:
    return [s.cmd.argv for s in plan.steps if s.cmd]  # type: ignore[attr-defined]


def test_partition_phase_of_a_kpartx_mapped_lv_uses_sfdisk_and_kpartx_u() -> None:
    d = disk("/dev/mapper/rl_build-vmtest1", "/dev/mapper/rl_build-vmtest1p1", "xfs")
    plan = grow.partition_plan(d)
    assert cmds(plan) == [
        ("sfdisk", "--no-reread", "--no-tell-kernel", "-N", "1", "/dev/mapper/rl_build-vmtest1"),
        ("kpartx", "-u", "-p", "p", "/dev/mapper/rl_build-vmtest1"),
    ]  # growpart cannot grow a partition of a device-mapper disk (it looks for /dev/dm-01)
    assert plan.steps[0].cmd is not None and plan.steps[0].cmd.stdin == ", +\n"
    assert "growpart cannot grow a partition of a kpartx-mapped LV" in plan.steps[0].reason
    full = replace(d, size=(2048 + 1000000) * 512 + grow.GPT_BACKUP)
    assert grow.partition_plan(full).empty


def test_partition_phase_of_a_loop_device_uses_growpart() -> None:
    plan = grow.partition_plan(disk("/dev/loop3", "/dev/loop3p1", "ext4"))
    assert cmds(plan) == [("growpart", "/dev/loop3", "1"), ("partx", "--update", "--nr", "1", "/dev/loop3")]


def test_room_after_a_partition() -> None:
    p1, p2 = Partition(1, "/dev/x1", 2048, 2048), Partition(2, "/dev/x2", 8192, 2048)
    assert grow.room_after(20480 * 512, "dos", p1, (p1, p2)) == (8192 - 4096) * 512
    assert grow.room_after(10240 * 512, "dos", p2, (p1, p2)) == 0
    assert grow.room_after(20480 * 512, "gpt", p2, (p1, p2)) == (20480 - 10240 - 33) * 512


def test_filesystem_phase_from_the_sizes_after_the_partition_phase() -> None:
    xfs = disk("/dev/loop0", "/dev/loop0p1", "xfs", fs_bytes=100 * MiB)
    assert cmds(grow.fs_plan(xfs, "/run/kvmops/mnt-abc")) == [("xfs_growfs", "/run/kvmops/mnt-abc")]
    ext = disk("/dev/loop0", "/dev/loop0p1", "ext4")
    assert grow.fs_plan(ext, "").empty  # the filesystem fills the partition: already so
    half = replace(ext, fs_bytes=ext.part_size // 2)
    assert cmds(grow.fs_plan(half, "")) == [("e2fsck", "-f", "-p", "/dev/loop0p1"), ("resize2fs", "/dev/loop0p1")]


def test_preview_plans_both_phases_the_second_as_the_first_leaves_the_disk() -> None:
    d = disk("/dev/mapper/rl_build-vmtest1", "/dev/mapper/rl_build-vmtest1p1", "xfs")
    first, second = grow.preview(d, disk_size=4096 * MiB)
    assert cmds(first)[0][0] == "sfdisk" and "by 3.5" in first.steps[0].reason  # the room of the grown LV
    assert cmds(second) == [("xfs_growfs", PLACEHOLDER)]
    assert "planned after the partition is grown" in second.title
    grown = grow.after_partition(replace(d, size=4096 * MiB))
    assert grown.room <= grow.SLACK and grown.part_size > d.part_size


def test_preview_of_an_image_file_names_the_loop_device_to_come() -> None:
    first, second = grow.preview(disk("/dev/loop7", "/dev/loop7p1", "ext4"))
    assert cmds(first)[0] == ("growpart", "/dev/loopN", "1")
    assert cmds(second)[-1] == ("resize2fs", "/dev/loopNp1")


def test_nothing_to_grow_is_two_noops() -> None:
    d = disk("/dev/loop0", "/dev/loop0p1", "xfs", size=(2048 + 1000000) * 512 + grow.GPT_BACKUP)
    assert all(p.empty for p in grow.preview(d))
