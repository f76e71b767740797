"""A guest disk as growing sees it (:class:`kvmops.images.grow.DiskFacts`), read through a
mapping: read-only for a plan, or while a grow phase holds the disk."""

from __future__ import annotations

import re
from dataclasses import replace

from kvmops.cmd import read
from kvmops.errors import InvalidInput
from kvmops.facts.disk import open_disk, read_table
from kvmops.facts.mount import image_root
from kvmops.hostfacts import HostFacts
from kvmops.images.disk import Disk
from kvmops.images.grow import GROWABLE, DiskFacts
from kvmops.images.mount import Filesystem, RootFs
from kvmops.runners.base import Runner


# ----------------------------------------------------------------- reading (transient mappings)
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


def root_of(runner: Runner, disk: Disk) -> Filesystem:
    """The root filesystem of a mapped disk (found read-only, released again); growable only."""
    with image_root(runner, disk) as root:
        fs = root.fs
    if fs.fstype not in GROWABLE:
        raise InvalidInput(f"the root filesystem is {fs.fstype}: kvmops grows {', '.join(GROWABLE)}")
    return fs


def read_disk(runner: Runner, disk: Disk, root: Filesystem) -> DiskFacts:
    """The facts of a mapped disk now: its size, its table, the root partition's size as the
    kernel or the mapping sees it, the filesystem's size."""
    table = read_table(runner, disk.device, disk.source)
    nodes = {p.number: p.node for p in disk.partitions}
    parts = tuple(replace(p, node=nodes.get(p.number, p.node)) for p in table.partitions)
    node = root.partition.node
    return DiskFacts(disk.source, disk.device, block_size(runner, disk.device), table.label, parts, root,
                     block_size(runner, node), fs_size(runner, root.fstype, node))


def look(runner: Runner, facts: HostFacts, *, image: str | None = None, lv: str | None = None) -> DiskFacts:
    """The disk's facts through a read-only mapping (plan mode does this too), unmapped after."""
    with open_disk(runner, facts, image=image, lv=lv) as disk:
        return read_disk(runner, disk, root_of(runner, disk))


def read_held(runner: Runner, disk: Disk, root: RootFs | None) -> DiskFacts:
    """What a grow phase plans from, read while its disk is held (:class:`kvmops.executor.Hold`)."""
    return read_disk(runner, disk, root.fs if root is not None else root_of(runner, disk))
