"""The LVM runbooks as procedures over facts: lv-create, lv-resize, lv-remove, lv-snapshot,
lv-restore and snapshot-filling-up (guide 4.2)."""

from __future__ import annotations

from datetime import datetime

from kvmops import names
from kvmops.executor import Procedure
from kvmops.hostfacts import HostFacts, lv_free, lv_of_no_guest
from kvmops.lvm import ops
from kvmops.lvm.facts import LV
from kvmops.procedures.base import Table, Verdict, need, single
from kvmops.site import Site
from kvmops.units import human


def _lv(facts: HostFacts, name: str) -> LV:
    lv = facts.lvm.get(name)
    need(lv is not None, f"LV {facts.site.vg}/{name} does not exist (see the inventory runbook)")
    assert lv is not None
    return lv


def _state_line(facts: HostFacts, lv: LV) -> str:
    guest = facts.running_disks.get(lv.path)
    use = f"the disk of running guest {guest}" if guest else ("open" if facts.lvm.is_open(lv) else "not in use")
    return f"{lv.path}: {human(lv.size)}, {use}; VG {facts.lvm.vg.name} has {human(facts.lvm.vg.free)} free"


# -- lv-create -------------------------------------------------------------------------------


def create(facts: HostFacts, name: str, size: int) -> Procedure:
    return single(facts, f"create LV {facts.site.vg}/{name}", lambda f: ops.create(f, name, size))


def verify_created(facts: HostFacts, name: str, size: int) -> Verdict:
    made = facts.lvm.get(name)
    return Verdict.of([(made is not None and made.size >= size,
                        f"{facts.site.vg}/{name} exists with {human(made.size) if made else 'no'} size "
                        f"(wanted at least {human(size)})")])


# -- lv-resize -------------------------------------------------------------------------------


def check_resize(facts: HostFacts, name: str, size: int) -> str:
    lv = _lv(facts, name)
    return f"{_state_line(facts, lv)}; {human(size)} wanted"


def resize(facts: HostFacts, name: str, size: int) -> Procedure:
    return single(facts, f"resize LV {facts.site.vg}/{name}", lambda f: ops.resize(f, name, size))


def verify_resized(facts: HostFacts, name: str, size: int) -> Verdict:
    now = facts.lvm.get(name)
    return Verdict.of([(now is not None and now.size == size,
                        f"{facts.site.vg}/{name} is {human(now.size) if now else 'missing'} (wanted {human(size)})")])


# -- lv-remove -------------------------------------------------------------------------------


def check_remove(facts: HostFacts, name: str) -> str:
    lv = facts.lvm.get(name)
    if lv is None:
        return f"{facts.site.vg}/{name} does not exist: nothing to remove"
    lv_of_no_guest(facts, lv, "lvremove")
    lv_free(facts, lv, "lvremove")
    return _state_line(facts, lv)


def remove(facts: HostFacts, name: str) -> Procedure:
    return single(facts, f"remove LV {facts.site.vg}/{name}", lambda f: ops.remove(f, name))


def verify_removed(facts: HostFacts, name: str) -> Verdict:
    return Verdict.of([(facts.lvm.get(name) is None, f"{facts.site.vg}/{name} is gone "
                        f"(VG {facts.lvm.vg.name} has {human(facts.lvm.vg.free)} free)")])


# -- lv-snapshot -----------------------------------------------------------------------------


def check_snapshot(facts: HostFacts, guest: str) -> str:
    lv = _lv(facts, facts.site.guest_lv(guest))
    lv_free(facts, lv, "snapshot")
    return _state_line(facts, lv)


def snapshot(facts: HostFacts, guest: str, size: int | None, when: datetime) -> Procedure:
    lv = facts.site.guest_lv(guest)
    return single(facts, f"snapshot {facts.site.vg}/{lv}", lambda f: ops.snapshot(f, lv, size, when))


def verify_snapshot(facts: HostFacts, guest: str, when: datetime) -> Verdict:
    lv = facts.site.guest_lv(guest)
    snap = facts.lvm.get(names.snapshot_name(lv, when))
    return Verdict.of([
        (snap is not None and snap.is_snapshot and snap.origin == lv,
         f"{facts.site.vg}/{names.snapshot_name(lv, when)} is a snapshot of {facts.site.vg}/{lv}"),
        (snap is not None and not snap.invalid, f"it is valid ({snap.data_percent or 0:.2f}% used)" if snap
         else "it is valid"),
    ])


# -- lv-restore ------------------------------------------------------------------------------


def snapshots_newest_first(facts: HostFacts, guest: str) -> tuple[LV, ...]:
    """The snapshots of the guest's LV, newest first by LVM's creation time (not by name)."""
    lv = facts.site.guest_lv(guest)
    snaps = facts.lvm.snapshots_of(lv)
    return tuple(sorted(snaps, key=lambda s: (s.created is not None, s.created or datetime.min, s.name),
                        reverse=True))


def snapshot_table(facts: HostFacts, guest: str) -> Table:
    """The guest's snapshots, newest first: when taken, size, fill, state (:func:`ops.snapshot_state`)."""
    limit = facts.site.snapshot_extend_at
    return Table([(s.name, f"{s.created:%Y-%m-%d %H:%M} UTC" if s.created else "?", human(s.size),
                   f"{s.data_percent or 0:.2f}%", ops.snapshot_state(s, limit))
                  for s in snapshots_newest_first(facts, guest)], ("snapshot", "taken", "size", "used", "state"))


def choose_snapshot(facts: HostFacts, guest: str, wanted: str = "") -> LV:
    """The snapshot to roll back to: ``wanted``, else the newest by creation time."""
    lv = _lv(facts, facts.site.guest_lv(guest))
    snaps = snapshots_newest_first(facts, guest)
    merged = f" (a snapshot merged by an earlier run is gone: {lv.path} no longer merging means that rollback is done)"
    need(snaps, f"guest {guest}: {lv.path} has no snapshot to roll back to" + merged)
    if not wanted:
        return snaps[0]
    chosen = next((s for s in snaps if s.name == wanted), None)
    need(chosen is not None, f"{wanted} is not a snapshot of {lv.path} "
                             f"(snapshots: {', '.join(s.name for s in snaps)})" + merged)
    assert chosen is not None
    return chosen


def check_restore(facts: HostFacts, guest: str, snap: LV) -> str:
    origin = _lv(facts, facts.site.guest_lv(guest))
    if not snap.merging:
        lv_free(facts, origin, "merge")
    when = f"{snap.created:%Y-%m-%d %H:%M} UTC" if snap.created else "an unknown time"
    return f"{origin.path} rolls back to {snap.name}, taken at {when}"


def restore(facts: HostFacts, snap: str, interval: int) -> Procedure:
    return single(facts, f"merge {facts.site.vg}/{snap}", lambda f: ops.merge(f, snap, interval))


def verify_restored(facts: HostFacts, guest: str, snap: str) -> Verdict:
    origin = facts.lvm.get(facts.site.guest_lv(guest))
    return Verdict.of([
        (facts.lvm.get(snap) is None, f"the snapshot {facts.site.vg}/{snap} is gone (merged)"),
        (origin is not None and not origin.merging, f"{facts.site.vg}/{facts.site.guest_lv(guest)} is no "
                                                    "longer merging"),
    ])


# -- snapshot-filling-up ---------------------------------------------------------------------


def fill_threshold(site: Site, threshold: float = 0.0) -> float:
    """The fill % at which a snapshot is extended: ``threshold``, or (0) the site's ``snapshot_extend_at``."""
    return threshold or site.snapshot_extend_at


def fill_table(facts: HostFacts, threshold: float) -> Table:
    """Every snapshot of a guest LV, fullest first, with its state (:func:`ops.snapshot_state`)."""
    return Table([(s.path, s.origin, human(s.size), f"{s.data_percent or 0:.2f}%", ops.snapshot_state(s, threshold))
                  for s in ops.snapshots(facts.site, facts.lvm)], ("snapshot", "origin", "size", "used", "state"))


def extend(facts: HostFacts, threshold: float, by: int) -> Procedure:
    proc = single(facts, "extend snapshots", lambda f: ops.extend_full_snapshots(f, threshold, by))
    proc.preview[0].notes.append(f"threshold {threshold:g}%, extend by {human(by)}; VG {facts.lvm.vg.name} has "
                                 f"{human(facts.lvm.vg.free)} free")
    return proc


def verify_extended(facts: HostFacts, threshold: float) -> Verdict:
    snaps = ops.snapshots(facts.site, facts.lvm)
    return Verdict.of([(not s.invalid and not ops.fill_reached(s, threshold),
                        f"{s.path}: {human(s.size)}, {s.data_percent or 0:.2f}% used, below {threshold:g}%"
                        if not s.invalid else f"{s.path} is INVALID (it overflowed, its data is lost): "
                        "remove it (lv-remove)") for s in snaps])
