"""The preview of guest-move: the hosts as the stages before a stage would leave them, so that
every stage can be planned (and shown) before anything runs. Pure: facts in, facts out."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from kvmops import names
from kvmops.guests.domain import DomainInfo
from kvmops.hostfacts import HostFacts, with_lvs
from kvmops.lvm.facts import LV
from kvmops.procedures.move_facts import (
    BOOTED,
    COPIED,
    SNAPSHOT_TAG,
    Both,
    disks,
    from_tag,
    mapping,
    move_snapshots,
    snap_size,
    source_lvs,
    xml_of,
)
from kvmops.transfer.xmlmap import map_xml, media_of


def with_domain(facts: HostFacts, guest: str, info: DomainInfo | None) -> HostFacts:
    kept = tuple(d for d in facts.domains if d.name != guest)
    return replace(facts, domains=tuple(sorted((*kept, info), key=lambda d: d.name)) if info else kept)


def closed(facts: HostFacts, guest: str) -> HostFacts:
    """The facts once ``guest`` is shut off: not running, its disk LVs no longer open."""
    info = facts.domain(guest)
    if info is None or not info.active:
        return facts
    mine = set(facts.disks_of.get(guest, ()))
    lvs = tuple(replace(lv, attr=lv.attr[:5] + "-" + lv.attr[6:]) if lv.path in mine and lv.open else lv
                for lv in facts.lvm.lvs)
    off = with_domain(facts, guest, replace(info, state="shut off", active=False))
    return replace(off, lvm=replace(facts.lvm, lvs=lvs))


def shut(b: Both, guest: str) -> Both:
    return replace(b, source=closed(b.source, guest))


def snapped(b: Both, guest: str, when: datetime) -> Both:
    snaps = [LV(names.snapshot_name(d.lv.name, when), d.lv.vg, "swi-a-s---", snap_size(b.source, d.lv), d.lv.name,
                0.0, when, tags=(SNAPSHOT_TAG,)) for d in disks(b, guest) if d.to_copy]
    return replace(b, source=with_lvs(b.source, snaps))


def tagged(b: Both, guest: str, state: str, devs: tuple[str, ...] | None = None) -> Both:
    """The target's copies tagged ``state`` (a copy the target ran from keeps its tag when copied)."""
    lvs = [LV(d.lv.name, b.target.site.vg, "-wi-a-----", d.lv.size, "", None, None,
              tags=tuple(sorted((from_tag(b.source, d.lv.name), state))))
           for d in disks(b, guest) if (devs is None or d.dev in devs) and (d.to_copy or state != COPIED)]
    return replace(b, target=with_lvs(b.target, lvs))


def unsnapped(b: Both, guest: str) -> Both:
    gone = {s.name for _, lv in source_lvs(b, guest) for s in move_snapshots(b.source, lv)}
    return replace(b, source=replace(b.source, lvm=replace(b.source.lvm, lvs=tuple(
        lv for lv in b.source.lvm.lvs if lv.name not in gone))))


def with_media(b: Both, guest: str) -> Both:
    info = b.source.domain(guest)
    media = media_of(xml_of(info)) if info else ()
    return replace(b, target=replace(b.target, paths={**b.target.paths, **{p: True for p in media}}))


def defined(b: Both, guest: str) -> Both:
    info = b.source.domain(guest)
    if info is None or b.target.domain(guest) is not None:
        return b
    xml = map_xml(xml_of(info), mapping(b, guest, disks(b, guest)))
    new = DomainInfo(guest, "shut off", False, False, True, xml, xml)
    return replace(b, target=with_domain(b.target, guest, new))


def booted(b: Both, guest: str) -> Both:
    info = b.target.domain(guest)
    b = tagged(b, guest, BOOTED)
    return replace(b, target=with_domain(b.target, guest, replace(info, state="running", active=True))) if info else b


def undefined(b: Both, guest: str) -> Both:
    return replace(b, source=with_domain(b.source, guest, None))


