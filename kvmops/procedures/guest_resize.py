"""guest-resize: grow a guest's LV, then its root partition and filesystem, in three phases.

1. the LV (``lvresize``), planned from the host's facts;
2. the root partition, planned from the disk's table once the LV is grown: ``sfdisk -N`` on
   the LV's device and ``kpartx -u`` (growpart cannot grow a partition of a kpartx-mapped LV);
3. the filesystem, planned from fresh facts after phase 2 (the partition's new size, the
   filesystem's size): ``xfs_growfs`` or ``e2fsck`` + ``resize2fs``.

Every phase is shown before anything runs, phases 2 and 3 as phase 1 and 2 would leave the
disk; each is planned again from fresh facts just before it runs (:mod:`kvmops.images.grow`).
"""

from __future__ import annotations

from kvmops.executor import Procedure
from kvmops.facts import grow as grow_facts
from kvmops.guests import lifecycle
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.images import grow
from kvmops.lvm import ops
from kvmops.plan import Plan, Progress
from kvmops.procedures import disks
from kvmops.procedures.base import Verdict, need, single
from kvmops.units import human


def disk(facts: HostFacts, guest: str) -> str:
    """``VG/LV`` of the guest's system disk."""
    return f"{facts.site.vg}/{facts.site.guest_lv(guest)}"


def check(facts: HostFacts, guest: str, size: int, offline: bool) -> str:
    """The guest exists, the size is not smaller (the same: a re-run after the LV was grown), and
    (offline) the guest is shut off."""
    info = lifecycle.need_domain(facts, guest)
    have = facts.lvm.need(facts.site.guest_lv(guest))
    need(size >= have.size, f"{have.path} is {human(have.size)} already: give a size of at least that "
                            "(this runbook only grows)")  # equal: the LV phase is done; a re-run grows what is left
    need(not offline or not info.active, f"guest {guest} is {info.state}: shut it down first, or set "
                                         "offline=False to grow inside the guest")
    grown = "(grown already)" if size == have.size else f"-> {human(size)}"
    return f"{have.path}: {human(have.size)} {grown}; guest {guest} is {info.state}"


def lv_phase(facts: HostFacts, guest: str, size: int) -> Procedure:
    """Phase 1: the LV, planned again from fresh facts just before it runs."""
    lv = facts.site.guest_lv(guest)
    return single(facts, f"grow LV {disk(facts, guest)}", lambda f: ops.resize(f, lv, size))


def look(host: Host, facts: HostFacts, guest: str) -> grow.DiskFacts:
    """The disk's table, root filesystem and sizes, through a read-only kpartx mapping."""
    return grow_facts.look(host.runner, facts, lv=disk(facts, guest))


def preview(seen: grow.DiskFacts, size: int) -> list[Plan]:
    """Phases 2 and 3 as they will run once the LV is ``size`` bytes."""
    return grow.preview(seen, disk_size=size)


def grow_root(host: Host, facts: HostFacts, guest: str, progress: Progress | None = None) -> list[Plan]:
    """Phases 2 and 3, each planned from fresh facts just before it runs (``facts``: read after
    the LV was grown, for the mapping's guards)."""
    return disks.grow(host, facts, lv=disk(facts, guest), progress=progress)


def verify(facts: HostFacts, guest: str, size: int, grown: grow.DiskFacts | None) -> Verdict:
    """The LV has its new size; the partition reaches the end of the disk and the filesystem
    fills it (read again through a read-only mapping: ``grown``; None: not grown offline)."""
    now = facts.lvm.get(facts.site.guest_lv(guest))
    checks = [(now is not None and now.size == size,
               f"{disk(facts, guest)} is {human(now.size) if now else 'missing'} (wanted {human(size)})")]
    if grown is not None:
        checks.append((grown.room <= grow.SLACK, f"partition {grown.part.number} ends "
                       f"{human(max(grown.room, 0))} before the end of the disk"))
        fs = grown.fs_bytes
        checks.append((fs is not None and grown.part_size - fs <= grow.SLACK,
                       f"the {grown.root.fstype} filesystem is {human(fs) if fs else 'of unknown size'}, its "
                       f"partition {human(grown.part_size)}"))
    return Verdict.of(checks)
