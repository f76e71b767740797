"""guest-move's view of the two hosts: the guest's disks on the source, what the target holds
of each (the tags on its LVs), clashes, and how the definition maps to the target site.

The target LVs carry tags (:data:`COPYING` -> :data:`COPIED` -> :data:`STARTED` ->
:data:`BOOTED`, and :func:`from_tag` naming the source LV), so a re-run recognises its own work;
an LV of that name without them is a clash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kvmops import guards, names
from kvmops.errors import NotFound, SafetyError
from kvmops.facts import read_facts
from kvmops.guests import hostfile, macs
from kvmops.guests.domain import DomainInfo
from kvmops.guests.xml import macs_of, read_domain
from kvmops.host import Host
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.lvm.facts import LV
from kvmops.lvm.paths import lv_path
from kvmops.procedures.base import need
from kvmops.transfer import lvm as tl
from kvmops.transfer.xmlmap import XmlMap, bridge_map, media_of, vlans_of
from kvmops.units import human

SOURCE, TARGET = "source", "target"
COPYING, COPIED, STARTED, BOOTED = (tl.MOVE_COPYING, tl.MOVE_COPIED, "kvmops-move-started",
                                    "kvmops-move-booted")
STATES = (COPYING, COPIED, STARTED, BOOTED)
SNAPSHOT_TAG = tl.MOVE_SNAPSHOT
PART = ".kvmops-part"
DEFAULT_BOOT_SECONDS = 300.0


@dataclass(frozen=True)
class Both:
    """The facts of both hosts, read at one moment."""

    source: HostFacts
    target: HostFacts


@dataclass(frozen=True)
class Disk:
    """A disk of the guest: its source LV and what the target holds of it.

    ``state``: ``new`` (no LV there), or the move's tag on the target LV (copying, copied,
    started, booted).
    """

    dev: str
    lv: LV
    there: LV | None
    state: str

    @property
    def to_copy(self) -> bool:
        return self.state in ("new", COPYING, COPIED)


def from_tag(facts: HostFacts, lv: str) -> str:
    """The tag naming the source of a copy: ``kvmops-move-from:<site>:<vg>/<lv>``."""
    return tl.tag(f"kvmops-move-from:{facts.site.name}:{facts.site.vg}/{lv}")


# -- reading both hosts ----------------------------------------------------------------------


def read_both(source: Host, target: Host, guest: str) -> Both:
    """The source's facts, then the target's (with its bridges and the files the guest needs)."""
    names.guest_name(guest)
    need(source.site.name != target.site.name, f"source and target are both site {source.site.name}: "
         "a move needs two different hosts (two site files)")
    kept = hostfile.xml_path(source.site, guest)
    src = read_facts(source, Wanted(paths=(kept, kept + hostfile.UNDEFINED_SUFFIX)))
    info = src.domain(guest)
    media = media_of(info.inactive_xml or info.xml) if info else ()
    dst = read_facts(target, Wanted(net=True, files=(hostfile.xml_path(target.site, guest),), paths=media))
    return Both(src, dst)


def xml_of(info: DomainInfo) -> str:
    return info.inactive_xml or info.xml


def source_lvs(both: Both, guest: str) -> tuple[tuple[str, LV], ...]:
    """(target dev, source LV) of each disk; every disk must be an LV of the source site's VG."""
    info = both.source.domain(guest)
    if info is None:
        return _moved_lvs(both, guest)
    out = []
    for d in read_domain(xml_of(info)).disks:
        if d.device != "disk" or not d.source:
            continue
        path = lv_path(d.source)
        vg, _, name = (path or "").partition("/")
        need(path is not None and vg == both.source.site.vg,
             f"guest {guest}'s disk {d.target} is {d.source}, not an LV of VG {both.source.site.vg}: guest-move "
             "moves LV disks of the site's VG only (move that disk by hand)")
        lv = both.source.lvm.get(name)
        need(lv is not None, f"guest {guest}'s disk LV {path} does not exist on {both.source.site.name}")
        assert lv is not None
        out.append((d.target, lv))
    need(out, f"guest {guest} has no disk to move")
    return tuple(out)


def _moved_lvs(both: Both, guest: str) -> tuple[tuple[str, LV], ...]:
    """After the source was undefined: the source LVs that the target guest's disks are copies of
    (their tags name them); an empty tuple once those were removed too."""
    info = both.target.domain(guest)
    if info is None:
        raise NotFound(f"no guest {guest} on {both.source.site.name} or {both.target.site.name} (see the "
                       "inventory runbook on each)")
    out = []
    for d in read_domain(xml_of(info)).disks:
        there = both.target.lvm.get((lv_path(d.source) or "/").split("/", 1)[1])
        lv = both.source.lvm.get(there.name) if there is not None else None
        if there is not None and lv is not None and from_tag(both.source, there.name) in there.tags:
            out.append((d.target, lv))
    return tuple(out)


def disks(both: Both, guest: str) -> tuple[Disk, ...]:
    """Every disk with the state of its copy on the target; a clash refuses."""
    return tuple(_disk(both, dev, lv) for dev, lv in source_lvs(both, guest))


def _disk(both: Both, dev: str, lv: LV) -> Disk:
    there = both.target.lvm.get(lv.name)
    where = f"{both.target.site.name}:{both.target.site.vg}/{lv.name}"
    guards.not_host_lv(lv.name, both.target.site.lv_prefix)
    extent = both.target.lvm.vg.extent_size
    need(not extent or lv.size % extent == 0, f"{lv.path} has {lv.size} bytes, not a whole number of the target VG's "
         f"{human(extent)} extents: an LV of the same size cannot be made on {both.target.site.name}")
    if there is None:
        return Disk(dev, lv, None, "new")
    if from_tag(both.source, lv.name) not in there.tags:
        raise SafetyError(f"{where} exists and is not this move's copy (no tag {from_tag(both.source, lv.name)}): "
                          "a name clash. Rename or remove that LV on the target, or move to another host; "
                          "nothing was changed")
    state = next((s for s in reversed(STATES) if s in there.tags), COPYING)
    if there.size != lv.size:
        raise SafetyError(f"{where} is this move's copy but has {human(there.size)}, the source LV "
                          f"{human(lv.size)}: the source was resized since. Remove the copy on the target "
                          "(lv-remove) and run again; nothing was changed")
    return Disk(dev, lv, there, state)


# -- checks ----------------------------------------------------------------------------------


def target_guest(both: Both, guest: str, moving: tuple[Disk, ...]) -> DomainInfo | None:
    """The guest of that name on the target: None, or this move's own (its disks are the copies)."""
    info = both.target.domain(guest)
    if info is None:
        return None
    ours = {d.there.path for d in moving if d.there is not None}
    # copies whose source LV is gone (a move that removed the source disks): their tags still name it
    ours |= {lv.path for lv in both.target.lvm.lvs if from_tag(both.source, lv.name) in lv.tags}
    theirs = set(both.target.disks_of.get(guest, ()))
    if not theirs or not theirs <= ours:
        raise SafetyError(f"a guest {guest} exists on {both.target.site.name} and is not this move's copy (its disks: "
                          f"{', '.join(sorted(theirs)) or 'none'}): a name clash; nothing was changed")
    return info


def mapping(both: Both, guest: str, moving: tuple[Disk, ...]) -> XmlMap:
    """How the definition changes: disks to the target VG, bridges by VLAN, emulator and type."""
    info = both.source.domain(guest)
    assert info is not None
    src, dst = both.source.site, both.target.site
    bridges = bridge_map(vlans_of(xml_of(info), src), dst)
    have = set(both.target.net.bridges())
    for old, new in bridges.items():
        need(new in have, f"the guest's bridge {old} carries VLAN {src.network_by_bridge(old).vlan}; its bridge on "
             f"{dst.name} is {new}, which does not exist there: create it first (runbook host-network on {dst.name})")
    shared = macs.collisions(macs_of(xml_of(info)), {g: m for g, m in both.target.macs_by_guest.items() if g != guest})
    need(not shared, f"the guest keeps its MACs when it moves, and {', '.join(shared)} on {dst.name} has one of them: "
         "two NICs with one MAC on a network disturb both; change that guest's MAC first")
    paths = {f"/dev/{src.vg}/{d.lv.name}": tl.device_of(dst.vg, d.lv.name) for d in moving}
    paths |= {f"/dev/mapper/{src.vg.replace('-', '--')}-{d.lv.name.replace('-', '--')}":
              tl.device_of(dst.vg, d.lv.name) for d in moving}
    return XmlMap(guest, paths, bridges, dst.emulator, dst.domain_type)


def state_text(d: Disk) -> str:
    return {"new": "new LV, copied", COPYING: "an earlier run's incomplete copy: streamed again into it",
            COPIED: "an earlier run's complete copy: checked again (streamed again only if the source differs)",
            STARTED: "the target guest has run from it: kept as it is",
            BOOTED: "the target guest has booted from it: kept as it is"}[d.state]


def snap_size(facts: HostFacts, lv: LV) -> int:
    return min(facts.site.snapshot_size, lv.size)


def source_removals(facts: HostFacts, lvs: tuple[LV, ...]) -> tuple[LV, ...]:
    snaps = [s for lv in lvs for s in facts.lvm.snapshots_of(lv.name) if SNAPSHOT_TAG not in s.tags]
    return (*snaps, *lvs)


def move_snapshots(facts: HostFacts, lv: LV) -> tuple[LV, ...]:
    """The snapshots this procedure made of ``lv`` (its tag), also those a crashed run left."""
    return tuple(s for s in facts.lvm.snapshots_of(lv.name) if SNAPSHOT_TAG in s.tags)


def current_snapshot(facts: HostFacts, lv: LV) -> LV:
    snaps = move_snapshots(facts, lv)
    need(snaps, f"the snapshot of {lv.path} for the copy is missing on {facts.site.name}; run guest-move again")
    return max(snaps, key=lambda s: (s.created is not None, s.created or datetime.min, s.name))
