"""Partition facts and the commands that map partitions (pure: parsers and builders).

LVs are mapped with kpartx (guide 4.3). The partition links ONLY ever appear under
``/dev/mapper``, named after the LV's device-mapper name, in which LVM doubles every dash:
``rl_build/vmvgcn-test2`` -> ``/dev/mapper/rl_build-vmvgcn--test2p1``. kvmops always passes
``-p p`` so the name is ``<mapname>p<N>`` whatever kpartx's default delimiter is.

Image files are attached with ``losetup --find --show`` plus ``partx -a``, which also works
where the kernel has no partition-table parsers (``losetup --partscan`` creates nothing there).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from kvmops import names
from kvmops.cmd import Cmd, change, read, transient
from kvmops.errors import InvalidInput

SECTOR = 512


@dataclass(frozen=True)
class Partition:
    """One partition: number, device node (when mapped), start and size in sectors, type, name."""

    number: int
    node: str
    start: int
    sectors: int
    type: str = ""
    name: str = ""
    uuid: str = ""

    @property
    def size(self) -> int:
        return self.sectors * SECTOR


@dataclass(frozen=True)
class PartitionTable:
    """``sfdisk -J``: the label (gpt, dos), sector size and partitions."""

    label: str
    device: str
    sector_size: int
    partitions: tuple[Partition, ...]

    def get(self, number: int) -> Partition:
        for p in self.partitions:
            if p.number == number:
                return p
        have = ", ".join(str(p.number) for p in self.partitions) or "none"
        raise InvalidInput(f"{self.device} has no partition {number} (partitions: {have})")


@dataclass(frozen=True)
class KpartxMap:
    """One line of ``kpartx -l``/``-av``/``-dv``: the mapping name, its partition number, size."""

    name: str
    number: int
    sectors: int | None = None
    start: int | None = None
    parent: str = ""

    @property
    def path(self) -> str:
        return f"/dev/mapper/{self.name}"


@dataclass(frozen=True)
class BlockDev:
    """A row of ``lsblk -J -b``: name, path, type, size and filesystem facts (may be unknown)."""

    name: str
    path: str
    type: str
    size: int
    fstype: str | None = None
    label: str | None = None
    uuid: str | None = None
    children: tuple[BlockDev, ...] = ()


# ----------------------------------------------------------------- names
def mapper_name(vg: str, lv: str) -> str:
    """The device-mapper name of an LV: dashes doubled, joined by one dash.

    ``mapper_name("rl_build", "vmvgcn-test2") == "rl_build-vmvgcn--test2"``
    """
    names.vg_name(vg)
    names.lv_name(lv, limit=names.MAX_LV_NAME + 16)
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


def lv_mapper_path(vg: str, lv: str) -> str:
    """``/dev/mapper/rl_build-vmtest1``: the LV's device as kpartx is given it."""
    return f"/dev/mapper/{mapper_name(vg, lv)}"


def lv_partition_path(vg: str, lv: str, number: int) -> str:
    """``/dev/mapper/rl_build-vmtest1p1``: where kpartx puts partition ``number`` (``-p p``)."""
    if number < 1:
        raise InvalidInput(f"partition numbers start at 1, got {number}")
    return f"{lv_mapper_path(vg, lv)}p{number}"


def loop_partition_path(loop: str, number: int) -> str:
    """``/dev/loop0p1``: what ``partx -a /dev/loop0`` creates for partition 1."""
    return f"{loop}p{number}"


# ----------------------------------------------------------------- builders
def kpartx_list(device: str) -> Cmd:
    """``kpartx -l -p p /dev/mapper/rl_build-vmtest1``: what -a would map; maps nothing."""
    return read("kpartx", "-l", "-p", "p", device)


def kpartx_add(device: str, *, write: bool = False) -> Cmd:
    """``kpartx -a -v -p p [-r] DEV``: map the partitions (read-only unless ``write``).

    Read-only mappings change nothing on the disk and are removed again by the caller's
    context manager: transient, so plan mode may make them to read facts inside the disk.
    """
    if write:
        return change("kpartx", "-a", "-v", "-p", "p", device)
    return transient("kpartx", "-a", "-v", "-r", "-p", "p", device)


def udev_settle() -> Cmd:
    """``udevadm settle``: wait until udev has handled the device events so far (its probes)."""
    return read("udevadm", "settle", "--timeout=10", ok=(0, 1))


def kpartx_delete(device: str) -> Cmd:
    """``kpartx -d -v -p p DEV``; nothing mapped: no output, rc 0."""
    return transient("kpartx", "-d", "-v", "-p", "p", device)


def losetup_attach(image: str, *, write: bool = False) -> Cmd:
    """``losetup --find --show [--read-only] IMAGE``: prints the loop device it took."""
    argv = ("losetup", "--find", "--show", *(() if write else ("--read-only",)), image)
    return change(*argv) if write else transient(*argv)


def losetup_backing(image: str) -> Cmd:
    """``losetup --noheadings --output NAME --associated IMAGE``: its loop devices, one a line."""
    return read("losetup", "--noheadings", "--output", "NAME", "--associated", image)


def losetup_detach(loop: str) -> Cmd:
    """``losetup --detach /dev/loopN``."""
    _loop(loop)
    return transient("losetup", "--detach", loop)


def losetup_refresh(loop: str) -> Cmd:
    """``losetup --set-capacity /dev/loopN`` (``-c``): see a grown backing file."""
    _loop(loop)
    return change("losetup", "--set-capacity", loop)


def partx_add(loop: str) -> Cmd:
    """``partx --add /dev/loopN``: create ``/dev/loopNpM`` for each partition."""
    _loop(loop)
    return transient("partx", "--add", loop)


def partx_delete(loop: str) -> Cmd:
    """``partx --delete /dev/loopN`` (rc 1 when nothing was there)."""
    _loop(loop)
    return transient("partx", "--delete", loop, ok=(0, 1))


def partx_update_all(loop: str) -> Cmd:
    """``partx --update /dev/loopN``: make the kernel's partitions match the table (read-only use)."""
    _loop(loop)
    return transient("partx", "--update", loop)


def partx_update(loop: str) -> Cmd:
    """``partx --update /dev/loopN``: the kernel learns a grown partition's new size."""
    _loop(loop)
    return change("partx", "--update", loop)


def sfdisk_json(device: str) -> Cmd:
    """``sfdisk -J DEV``: the partition table as JSON (rc 1: none)."""
    return read("sfdisk", "-J", device, ok=(0, 1))


def lsblk_json(device: str) -> Cmd:
    """``lsblk -J -b -o NAME,PATH,TYPE,SIZE,FSTYPE,LABEL,UUID DEV``."""
    return read("lsblk", "-J", "-b", "-o", "NAME,PATH,TYPE,SIZE,FSTYPE,LABEL,UUID", device)


def blkid_probe(device: str) -> Cmd:
    """``blkid -p -o export DEV``: probe the device itself (no cache, no udev); rc 2: nothing."""
    return read("blkid", "-p", "-o", "export", device, ok=(0, 2))


def _loop(dev: str) -> None:
    if not re.fullmatch(r"/dev/loop\d+", dev):
        raise InvalidInput(f"{dev!r} is not a loop device (/dev/loopN)")


# ----------------------------------------------------------------- parsers
_KPARTX_LIST = re.compile(r"^(?P<name>\S+) : (?P<start>\d+) (?P<sectors>\d+) (?P<parent>\S+) (?P<offset>\d+)$")
_KPARTX_ADD = re.compile(
    r"^add map (?P<name>\S+) \(\d+:\d+\): (?P<start>\d+) (?P<sectors>\d+) linear \S+ (?P<offset>\d+)$"
)
_KPARTX_DEL = re.compile(r"^del devmap : (?P<name>\S+)$")
_PART_NUMBER = re.compile(r"p(\d+)$")


def parse_kpartx(text: str) -> tuple[KpartxMap, ...]:
    """Parse ``kpartx -l``, ``kpartx -av`` or ``kpartx -dv`` output (other lines are ignored).

    ``rl_build-vmtest1p1 : 0 520192 /dev/mapper/rl_build-vmtest1 2048``
    ``add map rl_build-vmtest1p1 (253:1): 0 1044480 linear 253:0 2048``
    ``del devmap : rl_build-vmtest1p1``
    """
    maps: list[KpartxMap] = []
    for line in text.splitlines():
        line = line.strip()
        if m := _KPARTX_LIST.match(line) or _KPARTX_ADD.match(line):
            parent = m.groupdict().get("parent") or ""
            maps.append(KpartxMap(m["name"], _number(m["name"]), int(m["sectors"]),
                                  int(m["offset"]), parent))
        elif m := _KPARTX_DEL.match(line):
            maps.append(KpartxMap(m["name"], _number(m["name"])))
    return tuple(maps)


def _number(name: str) -> int:
    m = _PART_NUMBER.search(name)
    if not m:
        raise InvalidInput(f"kpartx mapping {name!r} does not end in p<N>: was -p p passed?")
    return int(m.group(1))


def parse_sfdisk(text: str) -> PartitionTable:
    """Parse ``sfdisk -J``; partition numbers come from the node names' trailing digits."""
    try:
        table = json.loads(text)["partitiontable"]
        parts = tuple(_sfdisk_part(p) for p in table.get("partitions", []))
        return PartitionTable(str(table["label"]), str(table["device"]),
                              int(table.get("sectorsize", SECTOR)), parts)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"sfdisk -J output kvmops cannot read ({exc})") from None


def _sfdisk_part(p: dict[str, Any]) -> Partition:
    node = str(p["node"])
    m = re.search(r"(\d+)$", node)
    if not m:
        raise KeyError(f"partition node {node!r} has no number")
    return Partition(int(m.group(1)), node, int(p["start"]), int(p["size"]), str(p.get("type", "")),
                     str(p.get("name", "")), str(p.get("uuid", "")))


def parse_lsblk(text: str) -> tuple[BlockDev, ...]:
    """Parse ``lsblk -J -b``; without udev FSTYPE/LABEL/UUID are null (use blkid -p then)."""
    try:
        return tuple(_blockdev(d) for d in json.loads(text)["blockdevices"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"lsblk -J output kvmops cannot read ({exc})") from None


def _blockdev(d: dict[str, Any]) -> BlockDev:
    return BlockDev(
        name=str(d["name"]), path=str(d.get("path") or "/dev/" + d["name"]), type=str(d["type"]),
        size=int(d["size"]), fstype=d.get("fstype"), label=d.get("label"), uuid=d.get("uuid"),
        children=tuple(_blockdev(c) for c in d.get("children", [])),
    )


def parse_blkid_export(text: str) -> dict[str, str]:
    """Parse ``blkid -p -o export``: ``KEY=value`` lines (TYPE, UUID, LABEL, PART_ENTRY_NUMBER, ...)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out
