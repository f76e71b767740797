"""Grow a guest's root: partition first (growpart), then the filesystem (guide "Increase root
partition").

Offline on the host (guest shut off): the LV is mapped (kpartx) or the image file attached
(loop + partx), the root found, then ``growpart DEV N``, the mapping told the new size
(``kpartx -u`` / ``partx --update``), and ``xfs_growfs MNT`` (mounted) or ``e2fsck -f -p``
+ ``resize2fs PARTDEV`` (unmounted: online ext4 resize on a loop partition was refused here
with "Permission denied"). Or as the plan to run inside the guest (``/dev/vda``).
Grow the LV (or the image file) itself first: ``kvmops lv resize``.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from kvmops.cmd import Cmd, change, read
from kvmops.errors import InvalidInput
from kvmops.executor import Executor
from kvmops.facts import HostFacts
from kvmops.host import Host
from kvmops.images import partitions as pt
from kvmops.images.disk import Disk, open_disk
from kvmops.images.mount import Filesystem, image_root, mounted
from kvmops.plan import Plan, Progress
from kvmops.runners.base import Runner
from kvmops.units import human

GROWABLE = ("xfs", "ext4", "ext3", "ext2", "btrfs")
SLACK = 1 << 20  # a filesystem within 1 MiB of its partition counts as full size
GPT_BACKUP = 33 * 512  # the backup GPT at the end of the disk: header and entries


def growpart_cmd(device: str, number: int, *, dry_run: bool = False) -> Cmd:
    """``growpart DEV N`` (``--dry-run``: only says CHANGE or NOCHANGE; rc 1 for NOCHANGE)."""
    if dry_run:
        return read("growpart", "--dry-run", device, str(number), ok=(0, 1))
    return change("growpart", device, str(number))


def sfdisk_grow_cmd(device: str, number: int) -> Cmd:
    """``sfdisk --no-reread --no-tell-kernel -N N DEV <<< ', +'``: partition N to the end.

    For device-mapper disks (a guest LV mapped with kpartx): ``growpart`` resolves them to
    ``/dev/dm-N`` and then looks for partition ``/dev/dm-N1``, which sfdisk calls
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


def needs_growpart(dry_run_output: str, returncode: int) -> bool:
    """Read ``growpart --dry-run``: ``CHANGE: partition=1 start=...`` vs ``NOCHANGE: ...``."""
    if returncode == 0 and "CHANGE:" in dry_run_output and "NOCHANGE" not in dry_run_output:
        return True
    if "NOCHANGE" in dry_run_output:
        return False
    raise InvalidInput(f"growpart --dry-run says: {dry_run_output.strip() or '(nothing)'}")


def fs_size(runner: Runner, fstype: str, device: str) -> int | None:
    """Bytes of the (unmounted) filesystem: ``xfs_info DEV`` / ``dumpe2fs -h DEV``; None: unknown."""
    if fstype == "xfs":
        out = runner.run(read("xfs_info", device)).stdout
        m = re.search(r"^data\s+=\s+bsize=(\d+)\s+blocks=(\d+)", out, re.M)
        return int(m.group(1)) * int(m.group(2)) if m else None
    if fstype.startswith("ext"):
        out = runner.run(read("dumpe2fs", "-h", device)).stdout
        bc, bs = re.search(r"^Block count:\s+(\d+)", out, re.M), re.search(r"^Block size:\s+(\d+)", out, re.M)
        return int(bc.group(1)) * int(bs.group(1)) if bc and bs else None
    return None


def block_size(runner: Runner, device: str) -> int:
    return int(runner.run(read("blockdev", "--getsize64", device)).stdout.strip() or 0)


def part_plan(disk: Disk, part: pt.Partition, *, grow_part: bool) -> Plan:
    """growpart, then tell the kernel or the kpartx mapping the new size (pure)."""
    plan = Plan(f"grow partition {part.number} of {disk.source}")
    if not grow_part:
        return plan.noop(f"already so: partition {part.number} ends at the end of the disk")
    if disk.device.startswith("/dev/mapper/"):
        plan.add(f"grow partition {part.number} to the end of {disk.source}", sfdisk_grow_cmd(disk.device, part.number))
        plan.add("tell the mapping its new size", change("kpartx", "-u", "-p", "p", disk.device))
    else:
        plan.add(f"grow partition {part.number} to the end of {disk.source}", growpart_cmd(disk.device, part.number))
        plan.add("tell the kernel the new size", change("partx", "--update", "--nr", str(part.number), disk.device))
    return plan


def fs_plan(fs: Filesystem, mountpoint: str, *, grown: bool, part_size: int, fs_bytes: int | None) -> Plan:
    """Grow the filesystem: ext* unmounted (``e2fsck -f -p`` first, as resize2fs demands),
    xfs/btrfs mounted at ``mountpoint`` (pure)."""
    dev = fs.partition.node
    plan = Plan(f"grow the {fs.fstype} filesystem on {dev}")
    if not grown and fs_bytes is not None and part_size - fs_bytes <= SLACK:
        return plan.noop(f"already so: the filesystem ({human(fs_bytes)}) fills the partition ({human(part_size)})")
    if fs.fstype.startswith("ext"):
        plan.add("check the filesystem first (resize2fs needs it)", change("e2fsck", "-f", "-p", dev))
    plan.add(f"grow the {fs.fstype} filesystem to fill the partition", fs_grow_cmd(fs.fstype, dev, mountpoint))
    return plan


def grow_offline(host: Host, facts: HostFacts, *, image: str | None = None, lv: str | None = None,
                 progress: Progress | None = None) -> Plan:
    """Grow the root partition and filesystem of a shut-off guest's disk on the host.

    Plan only unless ``host.apply`` (the disk is then attached read-only for the facts).
    Returns the plan, applied. Mapped and mounted only for the time of the call.
    """
    write = host.apply
    runner = host.runner
    run = Executor(host, progress or print)
    with open_disk(runner, facts, image=image, lv=lv, write=write) as disk:
        with image_root(runner, disk) as root:  # found read-only, released again
            fs = root.fs
        if fs.fstype not in GROWABLE:
            raise InvalidInput(f"the root filesystem is {fs.fstype}: kvmops grows {', '.join(GROWABLE)}")
        grow_part = _needs_growing(runner, disk, fs.partition)
        plan = part_plan(disk, fs.partition, grow_part=grow_part)
        run.execute(plan)
        part_size = block_size(runner, fs.partition.node)
        fs_bytes = fs_size(runner, fs.fstype, fs.partition.node)
        if fs.fstype.startswith("ext"):
            second = fs_plan(fs, "", grown=grow_part, part_size=part_size, fs_bytes=fs_bytes)
            run.execute(second)
        else:
            with mounted(runner, fs.partition.node, fs.fstype, write=write) as where:
                second = fs_plan(fs, where, grown=grow_part, part_size=part_size, fs_bytes=fs_bytes)
                run.execute(second)
        plan.extend(second)
        if not plan.empty:
            plan.steps[:] = [s for s in plan.steps if not s.noop]
        after = fs_size(runner, fs.fstype, fs.partition.node) if write else None
        if after is not None:
            plan.notes.append(f"the filesystem is now {human(after)}")
        return plan


def _needs_growing(runner: Runner, disk: Disk, part: pt.Partition) -> bool:
    """``growpart --dry-run``; for a device-mapper disk (growpart cannot) the free room after it."""
    if not disk.device.startswith("/dev/mapper/"):
        dry = runner.run(growpart_cmd(disk.device, part.number, dry_run=True))
        return needs_growpart(dry.stdout + dry.stderr, dry.returncode)
    size = int(runner.run(read("blockdev", "--getsize64", disk.device)).stdout.strip())
    label = pt.parse_sfdisk(runner.run(pt.sfdisk_json(disk.device)).stdout).label
    return room_after(size, label, part, disk.partitions) > SLACK


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

