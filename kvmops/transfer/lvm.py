"""LVM commands of the transfers: LVs and snapshots made with tags, tags changed, device paths.

Tags say what kvmops made an LV for, so a later run recognises its own work (an incomplete
copy is resumed, never a second one made beside it; a temporary snapshot is removed) and
leaves everything else alone. LVM allows ``A-Z a-z 0-9 _ + . - / = ! : # &`` in a tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from kvmops import names
from kvmops.cmd import Cmd, change
from kvmops.lvm.commands import lv_path
from kvmops.lvm.facts import LV
from kvmops.units import lvm_size

_TAG_BAD = re.compile(r"[^A-Za-z0-9_+.\-/=!:#&]")
MAX_TAG = 1024
MOVE_COPYING = "kvmops-move-copying"  # a move's copy that has not finished: its data is partial
MOVE_COPIED = "kvmops-move-copied"  # a move's finished copy that no guest has run from yet
RESTORE_INCOMPLETE = "kvmops-restore-incomplete"  # a restore that has not finished: its data is partial
INCOMPLETE_COPIES = (MOVE_COPYING, MOVE_COPIED, RESTORE_INCOMPLETE)
"""Tags of an LV that holds a copy kvmops was making and nothing has used: filling it again loses nothing."""
MOVE_SNAPSHOT, BACKUP_SNAPSHOT = "kvmops-move-snapshot", "kvmops-backup-snapshot"
SCRATCH_SNAPSHOTS = (MOVE_SNAPSHOT, BACKUP_SNAPSHOT)
"""Tags of a snapshot kvmops took only to read a stopped guest's disk from: removing it loses nothing."""


def tag(text: str) -> str:
    """``text`` as an LVM tag: characters LVM refuses become ``_``."""
    out = _TAG_BAD.sub("_", text)[:MAX_TAG]
    return out if out[:1] not in ("", "-") else "_" + out[: MAX_TAG - 1]


def device(lv: LV) -> str:
    """The block device of an LV from its facts: ``/dev/<vg>/<lv>`` (udev's link of an active LV)."""
    return f"/dev/{names.vg_name(lv.vg)}/{names.lv_name(lv.name, limit=names.MAX_LV_NAME + 16)}"


def device_of(vg: str, lv: str) -> str:
    return f"/dev/{names.vg_name(vg)}/{names.lv_name(lv, limit=names.MAX_LV_NAME + 16)}"


def _addtags(tags: Iterable[str]) -> list[str]:
    return [a for t in tags for a in ("--addtag", tag(t))]


def lvcreate_tagged(vg: str, lv: str, size: int, tags: Iterable[str]) -> Cmd:
    """``lvcreate --name LV --size SIZE --addtag T ... --wipesignatures y --yes VG``."""
    names.lv_name(lv)
    return change("lvcreate", "--name", lv, "--size", lvm_size(size), *_addtags(tags),
                  "--wipesignatures", "y", "--yes", names.vg_name(vg))


def snapshot_tagged(vg: str, lv: str, snapshot: str, size: int, tags: Iterable[str]) -> Cmd:
    """``lvcreate --snapshot --name SNAP --size SIZE --addtag T ... VG/LV``."""
    return change("lvcreate", "--snapshot", "--name", names.lv_name(snapshot, limit=names.MAX_LV_NAME + 16),
                  "--size", lvm_size(size), *_addtags(tags), lv_path(vg, lv))


def retag(vg: str, lv: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Cmd:
    """``lvchange --deltag A --addtag B VG/LV`` (metadata only: the data is not touched)."""
    dels = [a for t in remove for a in ("--deltag", tag(t))]
    return change("lvchange", *dels, *_addtags(add), lv_path(vg, lv))
