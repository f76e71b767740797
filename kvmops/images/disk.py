"""Attach a guest disk and map its partitions; unmapped again on every way out.

- an image file: ``losetup --find --show [--read-only] IMG`` then ``partx --add /dev/loopN``
  (``/dev/loopNpM``); undone with ``partx --delete`` and ``losetup --detach``;
- a guest LV: ``kpartx -a -v -p p [-r] /dev/mapper/VG-LV`` (``/dev/mapper/VG-LVpM``; guide 4.3);
  undone with ``kpartx -d``. Refused on the disk of a running guest.

Read-only attachments (the default) change nothing on the disk; the plan runner runs them so
that a plan can be computed from what is really inside the image.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvmops.errors import InvalidInput
from kvmops.images import partitions as pt


@dataclass(frozen=True)
class Disk:
    """An attached disk: its device and its partitions (``node`` = the mapped device path)."""

    device: str
    source: str
    partitions: tuple[pt.Partition, ...]
    writable: bool

    def partition(self, number: int) -> pt.Partition:
        for p in self.partitions:
            if p.number == number:
                return p
        raise InvalidInput(f"{self.source} has no partition {number}")


