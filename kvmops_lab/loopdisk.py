"""A partitioned image file on this machine: loop device, ``partx -a``, mounts; always undone.

This kernel has no partition parsers for loop devices (``losetup --partscan`` makes no
``loopNp1``), so partitions are added with ``partx -a`` (see reference/lab-facts.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kvmops.cmd import change
from kvmops.runners import LocalRunner
from kvmops_lab.errors import LabError


@dataclass(frozen=True)
class LoopDisk:
    """``/dev/loopN`` of an image file and its first partition ``/dev/loopNp1``."""

    device: str
    part1: str


@contextmanager
def attached(runner: LocalRunner, raw: Path) -> Iterator[LoopDisk]:
    """``losetup --find --show RAW``; ``partx -a``; always ``partx -d`` and ``losetup -d``."""
    dev = runner.run(change("losetup", "--find", "--show", str(raw))).stdout.strip()
    try:
        runner.run(change("partx", "-a", dev), check=False)
        part = f"{dev}p1"
        if not Path(part).exists():
            raise LabError(f"{part} did not appear after `partx -a {dev}`: no partition support")
        yield LoopDisk(dev, part)
    finally:
        runner.run(change("partx", "-d", dev), check=False)
        runner.run(change("losetup", "-d", dev), check=False)


@contextmanager
def partition(runner: LocalRunner, raw: Path) -> Iterator[str]:
    """The first partition of ``raw`` as ``/dev/loopNp1`` (see :func:`attached`)."""
    with attached(runner, raw) as disk:
        yield disk.part1


@contextmanager
def mounted(runner: LocalRunner, device: str, point: Path, options: str = "") -> Iterator[Path]:
    """``mount [-o OPTIONS] DEVICE POINT``; always ``umount`` (lazily when something holds it)."""
    point.mkdir(parents=True, exist_ok=True)
    runner.run(change("mount", *(("-o", options) if options else ()), device, str(point)))
    try:
        yield point
    finally:
        if runner.run(change("umount", str(point)), check=False).returncode != 0:
            runner.run(change("umount", "-l", str(point)), check=False)
