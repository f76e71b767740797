"""Grow a guest's root: partition first, then the filesystem (guide "Increase root partition"),
as two explicit phases, each planned from facts read just before it runs.

Offline on the host (guest shut off), with the disk mapped: an LV with kpartx, an image
file with a loop device and partx.

1. **Partition** (planned from the disk's table and size, :func:`partition_plan`): on an LV,
   ``sfdisk -N N DEV <<< ', +'`` on the LV's device and ``kpartx -u`` so the mapping learns
   the new size. Not growpart there: growpart resolves a device-mapper disk to ``/dev/dm-N``
   and then looks for the partition ``/dev/dm-N1``, which does not exist ("failed to get
   start and end"); sfdisk edits the table directly and also moves a GPT's backup header to
   the new end. On a loop device: ``growpart DEV N`` and ``partx --update``.
2. **Filesystem** (planned from fresh facts after phase 1: the partition's new size and the
   filesystem's size, :func:`fs_plan`): ``xfs_growfs MNT`` (mounted read-write for that
   command), ``e2fsck -f -p`` + ``resize2fs PARTDEV`` (unmounted: online ext4 resize on a loop
   partition was refused here with "Permission denied"), or ``btrfs filesystem resize max``.

:func:`look` reads the facts with a read-only mapping (plan mode does it too);
:func:`preview` plans both phases from them, the second as the first would leave the disk
("planned after the partition is grown"); :func:`grow` applies: map read-write, plan phase 1
from fresh facts and run it, read again, plan phase 2 and run it. Each phase goes through
the one executor. Grow the LV (or the image file) itself first: ``kvmops lv resize``.
Or the plan to run inside the guest (``/dev/vda``): :func:`guest_grow_plan`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace

from kvmops.cmd import Cmd, change
from kvmops.errors import InvalidInput
from kvmops.images import partitions as pt
from kvmops.images.imagefs import PLACEHOLDER
from kvmops.images.mount import Filesystem
from kvmops.plan import Plan
from kvmops.units import human

GROWABLE = ("xfs", "ext4", "ext3", "ext2", "btrfs")
SLACK = 1 << 20  # a filesystem (or partition) within 1 MiB of its room counts as full size
GPT_BACKUP = 33 * 512  # the backup GPT at the end of the disk: header and entries
AFTER_PARTITION = "planned after the partition is grown"


@dataclass(frozen=True)
class DiskFacts:
    """A guest disk as growing sees it, read while it is mapped."""

    source: str  # rl_build/vmtest1 or the image file
    device: str  # /dev/mapper/rl_build-vmtest1 or /dev/loopN
    size: int  # bytes of the disk (the LV, the image file)
    label: str  # gpt, dos
    partitions: tuple[pt.Partition, ...]
    root: Filesystem  # the root filesystem and its partition (node: the mapped device)
    part_size: int  # bytes of the root partition as the kernel (or the mapping) sees it
    fs_bytes: int | None  # bytes of the root filesystem; None: unknown

    @property
    def mapped(self) -> bool:
        """A device-mapper disk (a guest LV mapped with kpartx)."""
        return self.device.startswith("/dev/mapper/")

    @property
    def part(self) -> pt.Partition:
        return next(p for p in self.partitions if p.number == self.root.partition.number)

    @property
    def room(self) -> int:
        """Bytes after the root partition up to the next partition or the end of the disk."""
        return room_after(self.size, self.label, self.part, self.partitions)


# ----------------------------------------------------------------- builders and pure plans
def growpart_cmd(device: str, number: int) -> Cmd:
    """``growpart DEV N``: partition N to the end of the disk (a loop device, or inside the guest)."""
    return change("growpart", device, str(number))


def sfdisk_grow_cmd(device: str, number: int) -> Cmd:
    """``sfdisk --no-reread --no-tell-kernel -N N DEV <<< ', +'``: partition N to the end.

    For device-mapper disks (a guest LV mapped with kpartx), where growpart cannot work: it
    resolves them to ``/dev/dm-N`` and then looks for ``/dev/dm-N1``, which sfdisk calls
    ``/dev/dm-Np1`` ("failed to get start and end"). sfdisk also moves a GPT's backup header
    to the new end of the disk.
    """
    return change("sfdisk", "--no-reread", "--no-tell-kernel", "-N", str(number), device, stdin=", +\n")


def room_after(disk_bytes: int, label: str, part: pt.Partition, others: Collection[pt.Partition]) -> int:
    """Bytes between the end of ``part`` and the next partition or the end of the usable disk."""
    end = disk_bytes - (GPT_BACKUP if label == "gpt" else 0)
    later = [p.start * pt.SECTOR for p in others if p.start > part.start]
    return min([end, *later]) - (part.start + part.sectors) * pt.SECTOR


def fs_grow_cmd(fstype: str, device: str, mountpoint: str) -> Cmd:
    """``xfs_growfs MNT`` | ``resize2fs DEV`` | ``btrfs filesystem resize max MNT``."""
    if fstype == "xfs":
        return change("xfs_growfs", mountpoint)
    if fstype in ("ext4", "ext3", "ext2"):
        return change("resize2fs", device)
    if fstype == "btrfs":
        return change("btrfs", "filesystem", "resize", "max", mountpoint)
    raise InvalidInput(f"cannot grow a {fstype} filesystem: kvmops grows {', '.join(GROWABLE)}")


def partition_node(disk: str, number: int) -> str:
    """``/dev/vda`` 1 -> ``/dev/vda1``; ``/dev/nvme0n1`` 1 -> ``/dev/nvme0n1p1``."""
    return f"{disk}{'p' if disk[-1:].isdigit() else ''}{number}"


def partition_plan(d: DiskFacts) -> Plan:
    """Phase 1, from the disk's table: grow the root partition into the room after it, then
    tell the mapping (kpartx -u) or the kernel (partx --update) its new size."""
    n = d.part.number
    plan = Plan(f"grow partition {n} of {d.source}")
    if d.room <= SLACK:
        return plan.noop(f"already so: partition {n} ends at the end of the disk (or the next partition)")
    reason = f"grow partition {n} by {human(d.room)} to the end of {d.source}"
    if d.mapped:
        plan.add(f"{reason} (sfdisk: growpart cannot grow a partition of a kpartx-mapped LV)",
                 sfdisk_grow_cmd(d.device, n))
        plan.add("tell the mapping the partition's new size", change("kpartx", "-u", "-p", "p", d.device))
    else:
        plan.add(reason, growpart_cmd(d.device, n))
        plan.add("tell the kernel the partition's new size", change("partx", "--update", "--nr", str(n), d.device))
    return plan


def fs_plan(d: DiskFacts, mountpoint: str) -> Plan:
    """Phase 2, from facts read after phase 1: grow the filesystem to fill its partition.
    ext* unmounted (``e2fsck -f -p`` first, as resize2fs demands), xfs/btrfs mounted at
    ``mountpoint``."""
    fs, node = d.root, d.root.partition.node
    plan = Plan(f"grow the {fs.fstype} filesystem on {node}")
    if d.fs_bytes is not None and d.part_size - d.fs_bytes <= SLACK:
        return plan.noop(f"already so: the filesystem ({human(d.fs_bytes)}) fills the partition "
                         f"({human(d.part_size)})")
    if fs.fstype.startswith("ext"):
        plan.add("check the filesystem first (resize2fs needs it)", change("e2fsck", "-f", "-p", node, ok=(0, 1)))
    plan.add(f"grow the {fs.fstype} filesystem to fill the partition ({human(d.part_size)})",
             fs_grow_cmd(fs.fstype, node, mountpoint))
    return plan


def after_partition(d: DiskFacts) -> DiskFacts:
    """The disk as phase 1 leaves it: the root partition grown into the room after it."""
    if d.room <= SLACK:
        return d
    grown = replace(d.part, sectors=d.part.sectors + d.room // pt.SECTOR)
    parts = tuple(grown if p.number == grown.number else p for p in d.partitions)
    return replace(d, partitions=parts, part_size=grown.size)


def preview(d: DiskFacts, disk_size: int | None = None) -> list[Plan]:
    """Both phases planned from the facts read up front (``disk_size``: the disk's size once
    the LV was grown): the filesystem phase as the partition phase would leave the disk."""
    d = _placeholders(replace(d, size=disk_size) if disk_size is not None else d)
    first = partition_plan(d)
    second = fs_plan(after_partition(d), PLACEHOLDER)
    second.title += f" ({AFTER_PARTITION})"
    second.notes.append(f"{AFTER_PARTITION}: it is planned again from the partition's new size just before it runs")
    return [first, second]


def _placeholders(d: DiskFacts) -> DiskFacts:
    """A loop device's number is the one losetup gives when the disk is attached again."""
    if d.mapped:
        return d
    parts = tuple(replace(p, node=f"/dev/loopNp{p.number}") for p in d.partitions)
    root = replace(d.root, partition=replace(d.root.partition, node=f"/dev/loopNp{d.root.partition.number}"))
    return replace(d, device="/dev/loopN", partitions=parts, root=root)


def guest_grow_plan(disk: str = "/dev/vda", number: int = 1, fstype: str = "xfs", mountpoint: str = "/") -> Plan:
    """The commands to run inside the guest (as root): growpart, partprobe if needed, grow the fs."""
    if not re.fullmatch(r"/dev/[a-z0-9]+", disk):
        raise InvalidInput(f"bad disk {disk!r}: e.g. /dev/vda")
    if number < 1:
        raise InvalidInput(f"partition numbers start at 1, got {number}")
    part = partition_node(disk, number)
    plan = Plan(f"grow {part} ({fstype}) inside the guest")
    plan.add(f"grow partition {number} to the end of {disk}", growpart_cmd(disk, number))
    plan.add("only if lsblk still shows the old size: make the kernel re-read the table",
             change("partprobe", disk))
    plan.add(f"grow the {fstype} filesystem", fs_grow_cmd(fstype, part, mountpoint))
    plan.notes.append("run these inside the guest as root, after the LV was grown and the guest restarted")
    return plan
