"""LVM operations: the host's facts in, a :class:`Plan` out (no I/O here).

Every operation that could touch an LV in use takes :class:`~kvmops.hostfacts.HostFacts` (LVM's
report with the open flags, and the guests with their disks, from one read) and refuses
renames, shrinks, snapshots, merges and removals of an LV in use, whoever calls it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kvmops import guards, names
from kvmops.errors import InvalidInput, NotFound, SafetyError
from kvmops.guests.xml import read_domain
from kvmops.hostfacts import HostFacts, lv_free, lv_of_no_guest
from kvmops.lvm import commands as c
from kvmops.lvm.facts import LV
from kvmops.lvm.paths import lv_path
from kvmops.lvm.state import LvmState
from kvmops.plan import Call, MergeDone, Plan, Wait
from kvmops.site import Site
from kvmops.units import human


def list_guest_lvs(site: Site, state: LvmState) -> tuple[LV, ...]:
    """The guest LVs of the site's VG, sorted by name; host LVs never appear."""
    return tuple(sorted(state.guest_lvs(site.lv_prefix), key=lambda lv: lv.name))


def _managed(site: Site, lv: str) -> str:
    names.lv_name(lv, limit=names.MAX_LV_NAME + 16)
    guards.not_host_lv(lv, site.lv_prefix)
    return lv


def _fits(state: LvmState, need: int, what: str) -> None:
    if need > state.vg.free:
        raise InvalidInput(
            f"{what} needs {human(need)} but VG {state.vg.name} has only {human(state.vg.free)} free: "
            "choose a smaller size or free space first"
        )


def create(facts: HostFacts, lv: str, size: int) -> Plan:
    """Create a guest LV, or a no-op when it exists with at least that size."""
    site, state = facts.site, facts.lvm
    _managed(site, lv)
    plan = Plan(f"create LV {site.vg}/{lv} of {human(size)}")
    have = state.get(lv)
    if have is not None:
        if have.size < size:
            raise InvalidInput(
                f"LV {have.path} exists with {human(have.size)}, smaller than {human(size)}: "
                "resize it (kvmops lv resize) or pick another name"
            )
        return plan.noop(f"{have.path} exists already ({human(have.size)})")
    _fits(state, size, f"LV {site.vg}/{lv}")
    return plan.add(
        f"create {site.vg}/{lv} ({human(size)}; VG has {human(state.vg.free)} free)",
        c.lvcreate(site.vg, lv, size),
    )


def rename(facts: HostFacts, old: str, new: str) -> Plan:
    """Rename a guest LV; the new name must also follow the guest convention."""
    site, state = facts.site, facts.lvm
    _managed(site, old)
    _managed(site, new)
    plan = Plan(f"rename LV {site.vg}/{old} to {new}")
    if state.get(old) is None and state.get(new) is not None:
        return plan.noop(f"{site.vg}/{new} exists and {old} does not: already renamed")
    lv = state.need(old)
    if state.get(new) is not None:
        raise InvalidInput(f"LV {site.vg}/{new} exists already: pick another name")
    lv_free(facts, lv, "rename")
    waiting = facts.guests_with_disk(f"{site.vg}/{new}")
    if waiting:
        raise SafetyError(
            f"guest {', '.join(waiting)} names {site.vg}/{new} as a disk (missing now): renaming {lv.path} to "
            "that name would give this LV to that guest too. Pick another name, or change that guest's "
            "definition first; nothing was changed"
        )
    plan.notes.append("a guest whose domain XML names the old LV must be updated to the new name")
    return plan.add(f"rename {lv.path} to {new}", c.lvrename(site.vg, old, new))


def resize(facts: HostFacts, lv: str, size: int) -> Plan:
    """Grow an LV (or a snapshot; also while in use); shrinking is destructive, needs confirm
    and is refused on an LV in use."""
    site, state = facts.site, facts.lvm
    _managed(site, lv)
    have = state.need(lv)
    plan = Plan(f"resize LV {have.path} from {human(have.size)} to {human(size)}")
    if size == have.size:
        return plan.noop(f"{have.path} is {human(size)} already")
    if size > have.size:
        _fits(state, size - have.size, f"growing {have.path}")
        plan.notes.append("the partition and filesystem inside are grown separately (grow root)")
        plan.add(f"grow {have.path} by {human(size - have.size)}", c.lvresize(site.vg, lv, size))
        return _tell_running_guests(facts, have, size, plan)
    lv_free(facts, have, "shrinking")
    plan.notes.append(
        f"SHRINKING cuts {human(have.size - size)} off the end of {have.path}: data there is LOST. "
        "Shrink the filesystem and partition inside first."
    )
    return plan.add(
        f"shrink {have.path} by {human(have.size - size)}",
        c.lvresize(site.vg, lv, size, shrink=True),
        target=have.path,
    )


def _tell_running_guests(facts: HostFacts, lv: LV, size: int, plan: Plan) -> Plan:
    """A running guest sees its disk's old size until told (``virsh blockresize``)."""
    for d in facts.domains:
        if not d.active:
            continue
        for disk in read_domain(d.xml).disks:
            if lv_path(disk.source) == lv.path and disk.device == "disk":
                plan.add(f"tell the running guest {d.name} that its disk {disk.target} grew (else it sees the old "
                         "size until its next start)",
                         Call("blockresize", d.name, f"virsh blockresize {d.name} {disk.target} {size}B",
                              device=disk.target, size=size))
    return plan


def snapshot(facts: HostFacts, lv: str, size: int | None = None, when: datetime | None = None) -> Plan:
    """``lvcreate --snapshot`` named ``<lv>-YYYYMMDDTHHMMZ`` (UTC); refused on an LV in use."""
    site, state = facts.site, facts.lvm
    _managed(site, lv)
    origin = state.need(lv)
    if origin.is_snapshot:
        raise InvalidInput(f"{origin.path} is itself a snapshot: snapshot its origin {origin.origin}")
    lv_free(facts, origin, "snapshot")
    size = size or site.snapshot_size
    name = names.snapshot_name(lv, when or datetime.now(UTC))
    plan = Plan(f"snapshot {origin.path} as {name}")
    if state.get(name) is not None:
        return plan.noop(f"snapshot {site.vg}/{name} exists already (same minute)")
    _fits(state, size, f"snapshot {name}")
    if size < origin.size:
        plan.notes.append(
            f"the snapshot holds {human(size)} of changes to a {human(origin.size)} origin; "
            "watch its fill % (kvmops lv snapshots) and extend it before it overflows"
        )
    return plan.add(f"snapshot {origin.path} ({human(size)})", c.lvsnapshot(site.vg, lv, name, size))


def snapshots(site: Site, state: LvmState) -> tuple[LV, ...]:
    """Every snapshot of a guest LV, fullest first."""
    snaps = [lv for lv in list_guest_lvs(site, state) if lv.is_snapshot]
    return tuple(sorted(snaps, key=lambda lv: -(lv.data_percent or 0.0)))


INVALID = "INVALID"
MERGING = "merging"
FILLING_UP = "FILLING UP"
OK = "ok"


def fill_reached(lv: LV, threshold: float) -> bool:
    """The snapshot is ``threshold`` % full or more: extend it (a snapshot that overflows is lost)."""
    return (lv.data_percent or 0.0) >= threshold


def snapshot_state(lv: LV, threshold: float) -> str:
    """The one classification of a snapshot (or an origin): :data:`INVALID` (it overflowed: its
    data is lost), :data:`MERGING`, :data:`FILLING_UP` (at or above ``threshold`` %), else :data:`OK`."""
    if lv.invalid:
        return INVALID
    if lv.merging:
        return MERGING
    return FILLING_UP if lv.is_snapshot and fill_reached(lv, threshold) else OK


def extend_full_snapshots(facts: HostFacts, threshold: float | None = None, by: int | None = None) -> Plan:
    """Grow each snapshot whose fill % is at or above the threshold (site default 80%); also
    of a running guest (growing a snapshot is safe while it is in use: guide 4.2.4)."""
    site, state = facts.site, facts.lvm
    limit = site.snapshot_extend_at if threshold is None else threshold
    grow = by or site.snapshot_extend_by
    plan = Plan(f"extend snapshots at or above {limit:g}% full by {human(grow)}")
    full = [s for s in snapshots(site, state) if fill_reached(s, limit)]
    for snap in full:
        if snap.invalid:
            plan.notes.append(f"{snap.path} has overflowed and is INVALID: its data is lost; remove it")
            continue
        _fits(state, grow, f"extending {snap.path}")
        plan.add(
            f"{snap.path} is {snap.data_percent:.2f}% full: grow to {human(snap.size + grow)}",
            c.lvresize(site.vg, snap.name, snap.size + grow),
        )
        _tell_running_guests(facts, snap, snap.size + grow, plan)  # a guest that runs on the snapshot itself
    if not plan.steps:
        plan.noop(f"no snapshot is {limit:g}% full or more")
    if len(full) > 1:
        plan.notes.append("each extension is checked against the VG's free space before the plan")
    return plan


def merge(facts: HostFacts, snap: str, interval: int = 10) -> Plan:
    """Restore an origin to a snapshot: ``lvconvert --mergesnapshot``, then wait for the end.

    The snapshot LV is gone afterwards (guide 4.2.5). A merge already under way (started
    before, e.g. interrupted by a power cut: it resumes at the next activation) is waited
    for, never started again.
    """
    site, state = facts.site, facts.lvm
    if isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval <= 3600:
        raise InvalidInput(f"merge progress interval {interval!r}: give whole seconds from 1 to 3600")
    _managed(site, snap)
    plan = Plan(f"merge snapshot {site.vg}/{snap} into its origin")
    lv = state.get(snap)
    if lv is None:
        raise NotFound(f"snapshot {site.vg}/{snap} does not exist (see `kvmops lv snapshots`)")
    if not lv.is_snapshot:
        raise InvalidInput(f"{lv.path} is not a snapshot (attributes {lv.attr}): nothing to merge")
    origin = f"{site.vg}/{lv.origin}"
    if lv.merging:
        plan.notes.append("a merge of this snapshot has already started: waiting for it")
    else:
        if lv.invalid:
            raise SafetyError(f"{lv.path} has overflowed (INVALID): merging it would corrupt {origin}")
        lv_free(facts, state.need(lv.origin), "merge")
        lv_free(facts, lv, "merge")
        taken = f"taken {lv.created:%Y-%m-%d %H:%M} UTC" if lv.created else "of unknown time"
        plan.add(f"roll {origin} back to {lv.path} ({taken}); progress every {interval}s",
                 c.lvmerge(site.vg, snap, interval), target=lv.path)
    plan.add(
        f"wait until the merge has really finished and {lv.path} is gone",
        Wait(f"poll `lvs {site.vg}` until {snap} is gone", MergeDone(site.vg, snap, lv.origin)),
    )
    plan.notes.append(f"the snapshot {lv.path} is REMOVED by the merge; take a new one to keep that state")
    return plan


def remove(facts: HostFacts, lv: str) -> Plan:
    """``lvremove VG/LV`` under the guide's rules; needs ``confirm == 'VG/LV'``. Refused on an
    LV in use, or named as a disk by a defined guest (remove the guest first)."""
    site, state = facts.site, facts.lvm
    _managed(site, lv)
    plan = Plan(f"remove LV {site.vg}/{lv}")
    have = state.get(lv)
    if have is None:
        return plan.noop(f"{site.vg}/{lv} does not exist: nothing to remove")
    lv_free(facts, have, "lvremove")
    lv_of_no_guest(facts, have, "lvremove")
    snaps = state.snapshots_of(lv)
    if snaps:
        listed = ", ".join(s.path for s in snaps)
        raise SafetyError(
            f"{have.path} has snapshots ({listed}): lvremove would take them too. "
            "Remove or merge each snapshot first"
        )
    if have.is_snapshot:
        plan.notes.append(f"removing the snapshot {have.path} keeps {site.vg}/{have.origin} as it is now")
    plan.notes.append("its data is gone for good; lvremove's own prompt is answered for this LV only")
    return plan.add(f"remove {have.path} ({human(have.size)})", c.lvremove(site.vg, lv), target=have.path)
