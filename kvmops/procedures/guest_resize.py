"""guest-resize: grow a guest's LV, then its root partition and filesystem, in three phases of
one procedure (:func:`procedure`; every confirmation judged before the first change).

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
from kvmops.facts import read_facts
from kvmops.guests import lifecycle
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.images import grow
from kvmops.lvm import ops
from kvmops.plan import Plan
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


def look(host: Host, guest: str) -> grow.DiskFacts | None:
    """The disk's table, root filesystem and sizes, through a read-only kpartx mapping, holding
    the guest's lock meanwhile; None on a recorded host (no disk can be mapped there)."""
    return disks.look_read_only(host, guest, "guest-resize (read-only)",
                                lambda f: grow_facts.look(host.runner, f, lv=disk(f, guest)))


def preview(seen: grow.DiskFacts, size: int) -> list[Plan]:
    """Phases 2 and 3 as they will run once the LV is ``size`` bytes."""
    return grow.preview(seen, disk_size=size)


def procedure(host: Host, facts: HostFacts, guest: str, size: int, offline: bool) -> Procedure:
    """One procedure, so every confirmation is judged before its first change: the LV (phase
    1); with ``offline``, the root partition and its filesystem (phases 2 and 3, holding the
    disk), previewed from a read-only look at the disk as they will run once the LV has grown.
    What is not planned is said in the LV phase's notes, with why: ``offline=False`` (the
    commands to run inside the guest), or a recorded host (no disk can be mapped there)."""
    proc = lv_phase(facts, guest, size)
    notes = proc.preview[0].notes
    if not offline:
        notes += [f"offline=False: not grown on the host; after the guest's restart run inside it, as root: "
                  f"{s.text()}  # {s.reason}" for s in grow.guest_grow_plan().steps]
        return proc
    seen = look(host, guest)
    if seen is None:
        notes.append(disks.recorded_note(host, f"the partition phase (`sfdisk -N` + `kpartx -u` on "
                                               f"{disk(facts, guest)}) and the filesystem phase (`xfs_growfs` or "
                                               "`resize2fs`) are not planned here"))
        return proc
    notes.append(f"read from the disk (read-only): {disks.size_line(seen)}")
    for phase, plan in disks.grow_phases(seen, lv=disk(facts, guest), disk_size=size):
        proc.add(phase, plan)
    return proc


def verify(host: Host, guest: str, size: int, offline: bool) -> Verdict:
    """After the run: the host read again, and (offline) the disk through a read-only mapping."""
    grown = look(host, guest) if offline else None
    return judge(read_facts(host), guest, size, grown)


def judge(facts: HostFacts, guest: str, size: int, grown: grow.DiskFacts | None) -> Verdict:
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
