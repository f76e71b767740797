"""guest-move: a cold move of a guest to another host without shared storage.

Checked on the target first (VG space for LVs of the same sizes, a bridge for each of the
guest's VLANs, no guest or LV of those names that is not this move's own). Then: the guest
shut down on the source, an LVM snapshot of each disk for the copy's duration, each disk
streamed over SSH into an LV of the same size on the target and the sha256 of both ends
compared, the guest defined there from its libvirt definition (disks and bridges mapped to the
target site), started, and its boot verified by a login prompt on its console. Only then, with
``confirm`` = the guest's name, it is undefined on the source (its XML kept as ``.undefined``);
the source LVs stay until a second confirmation (``confirm_disks``).

The target LVs carry tags (:data:`COPYING` -> :data:`COPIED` -> :data:`STARTED` ->
:data:`BOOTED`, and :func:`from_tag` naming the source LV), so a re-run recognises its own work:
an incomplete copy is streamed again into the same LV, a complete one is checked again (and
streamed again only when the source differs), one the target guest has run from is never
overwritten. An LV of that name without the tags is a clash. Any failure leaves the source
guest defined with its disks as they were: the snapshots are removed on every path out, and
the guest is started again when it was running before and its copy never ran on the target.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from kvmops import names
from kvmops.cmd import Cmd, change
from kvmops.errors import KvmopsError, NotFound, SafetyError
from kvmops.facts import HostFacts, Wanted, read_facts, with_lvs
from kvmops.guests import hostfile, lifecycle
from kvmops.guests.inventory import lv_path
from kvmops.guests.xml import read_domain
from kvmops.host import Host
from kvmops.lvm import commands as lvc
from kvmops.lvm import ops
from kvmops.lvm.facts import LV
from kvmops.plan import Call, Endpoint, Plan, Progress, Transfer, Wait
from kvmops.procedures.base import PreconditionFailed, Verdict, need
from kvmops.transfer import commands as tc
from kvmops.transfer import lvm as tl
from kvmops.transfer.run import sha256_cmd
from kvmops.transfer.stages import Stage, Staged
from kvmops.transfer.xmlmap import XmlMap, bridge_map, map_xml, media_of, vlans_of
from kvmops.units import human
from kvmops.virt import DomainInfo

SOURCE, TARGET = "source", "target"
COPYING, COPIED, STARTED, BOOTED = ("kvmops-move-copying", "kvmops-move-copied", "kvmops-move-started",
                                    "kvmops-move-booted")
STATES = (COPYING, COPIED, STARTED, BOOTED)
SNAPSHOT_TAG = "kvmops-move-snapshot"
PART = ".kvmops-part"
DEFAULT_BOOT_SECONDS = 300.0


class BootNotVerified(KvmopsError):
    """The guest started on the target showed no login prompt in time."""


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


def _xml(info: DomainInfo) -> str:
    return info.inactive_xml or info.xml


def source_lvs(both: Both, guest: str) -> tuple[tuple[str, LV], ...]:
    """(target dev, source LV) of each disk; every disk must be an LV of the source site's VG."""
    info = both.source.domain(guest)
    if info is None:
        return _moved_lvs(both, guest)
    out = []
    for d in read_domain(_xml(info)).disks:
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
    for d in read_domain(_xml(info)).disks:
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


def _target_guest(both: Both, guest: str, moving: tuple[Disk, ...]) -> DomainInfo | None:
    """The guest of that name on the target: None, or this move's own (its disks are the copies)."""
    info = both.target.domain(guest)
    if info is None:
        return None
    ours = {d.there.path for d in moving if d.there is not None}
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
    bridges = bridge_map(vlans_of(_xml(info), src), dst)
    have = set(both.target.net.bridges())
    for old, new in bridges.items():
        need(new in have, f"the guest's bridge {old} carries VLAN {src.network_by_bridge(old).vlan}; its bridge on "
             f"{dst.name} is {new}, which does not exist there: create it first (runbook host-network on {dst.name})")
    paths = {f"/dev/{src.vg}/{d.lv.name}": tl.device_of(dst.vg, d.lv.name) for d in moving}
    paths |= {f"/dev/mapper/{src.vg.replace('-', '--')}-{d.lv.name.replace('-', '--')}":
              tl.device_of(dst.vg, d.lv.name) for d in moving}
    return XmlMap(guest, paths, bridges, dst.emulator, dst.domain_type)


def check(both: Both, guest: str) -> str:
    """Everything a move needs, or a refusal saying what to do; a summary of what will happen."""
    moving = disks(both, guest)
    there = _target_guest(both, guest, moving)
    info = both.source.domain(guest)
    src, dst = both.source.site, both.target.site
    lines = []
    if info is None:
        need(there is not None and there.active, f"guest {guest} is not defined on {src.name} and does not run on "
             f"{dst.name}: nothing to move")
        return f"guest {guest} was moved to {dst.name} already (it runs there); the source LVs: " + \
            ", ".join(d.lv.path for d in moving)
    need(not (info.active and there is not None and there.active),
         f"guest {guest} runs on BOTH {src.name} and {dst.name}: decide which one is the real one, shut the other "
         "down, then run guest-move again (nothing was changed)")
    new = [d for d in moving if d.state == "new"]
    need(sum(d.lv.size for d in new) <= both.target.lvm.vg.free,
         f"the target VG {dst.vg} on {dst.name} has {human(both.target.lvm.vg.free)} free, the new LVs need "
         f"{human(sum(d.lv.size for d in new))}: free space there first")
    snaps = sum(_snap_size(both.source, d.lv) for d in moving if d.to_copy)
    need(snaps <= both.source.lvm.vg.free, f"the source VG {src.vg} has {human(both.source.lvm.vg.free)} free; the "
         f"snapshots for the copy need {human(snaps)}")
    m = mapping(both, guest, moving)
    lines.append(f"guest {guest} on {src.name}: {info.state}" + (" (shut down for the move)" if info.active else ""))
    lines += [f"disk {d.dev}: {d.lv.path} ({human(d.lv.size)}) -> {dst.name}:{dst.vg}/{d.lv.name}: {_state_text(d)}"
              for d in moving]
    lines += [f"bridge {old} -> {new} (VLAN {src.network_by_bridge(old).vlan})" for old, new in m.bridges.items()]
    lines += [f"file {p}: " + ("on the target already (used as it is)" if both.target.exists(p) else "copied")
              for p in media_of(_xml(info))]
    if there is not None:
        lines.append(f"guest {guest} on {dst.name}: {there.state} (this move's own, from an earlier run)")
    lines.append(f"the target VG {dst.vg} has {human(both.target.lvm.vg.free)} free")
    return "\n".join(lines)


def _state_text(d: Disk) -> str:
    return {"new": "new LV, copied", COPYING: "an earlier run's incomplete copy: streamed again into it",
            COPIED: "an earlier run's complete copy: checked again (streamed again only if the source differs)",
            STARTED: "the target guest has run from it: kept as it is",
            BOOTED: "the target guest has booted from it: kept as it is"}[d.state]


def _snap_size(facts: HostFacts, lv: LV) -> int:
    return min(facts.site.snapshot_size, lv.size)


def disk_targets(both: Both, guest: str) -> str:
    """What ``confirm_disks`` must say to remove the source LVs: each, snapshots first."""
    return ",".join(lv.path for lv in _source_removals(both.source, tuple(lv for _, lv in source_lvs(both, guest))))


def _source_removals(facts: HostFacts, lvs: tuple[LV, ...]) -> tuple[LV, ...]:
    snaps = [s for lv in lvs for s in facts.lvm.snapshots_of(lv.name) if SNAPSHOT_TAG not in s.tags]
    return (*snaps, *lvs)


# -- the stages ------------------------------------------------------------------------------


def _shutdown(b: Both, guest: str, timeout: float) -> Plan:
    info = b.source.domain(guest)
    if info is None:
        return Plan(f"shut down guest {guest} on {b.source.site.name}").noop(
            f"guest {guest} is no longer defined on {b.source.site.name} (moved already)")
    there = b.target.domain(guest)
    if info.active and there is not None and there.active:
        raise SafetyError(f"guest {guest} runs on both {b.source.site.name} and {b.target.site.name}: nothing "
                          "was changed; decide which is the real one and shut the other down")
    return lifecycle.shutdown(b.source, guest, timeout=timeout)


def _move_snapshots(facts: HostFacts, lv: LV) -> tuple[LV, ...]:
    """The snapshots this procedure made of ``lv`` (its tag), also those a crashed run left."""
    return tuple(s for s in facts.lvm.snapshots_of(lv.name) if SNAPSHOT_TAG in s.tags)


def _snapshots(b: Both, guest: str, when: datetime) -> Plan:
    site = b.source.site
    plan = Plan(f"snapshot the disks of {guest} on {site.name} for the copy")
    moving = [d for d in disks(b, guest) if d.to_copy]
    for d in moving:
        if b.source.running_disks.get(d.lv.path):
            raise SafetyError(f"{d.lv.path} is the disk of the running guest {guest}: not copied (it was shut down "
                              "before; someone started it again?); nothing more was changed")
        for old in _move_snapshots(b.source, d.lv):
            plan.add(f"remove {old.path}, the snapshot of an interrupted earlier run (its data may be older than "
                     f"{d.lv.name}'s)", lvc.lvremove(site.vg, old.name))
        name = names.snapshot_name(d.lv.name, when)
        clash = b.source.lvm.get(name)
        if clash is not None and SNAPSHOT_TAG not in clash.tags:
            raise SafetyError(f"{clash.path} exists (a snapshot of the same minute, not this move's): run again in a "
                              "minute; nothing was changed")
        size = _snap_size(b.source, d.lv)
        plan.add(f"snapshot {d.lv.path} as {name} ({human(size)}) for the copy's duration; removed after it, on "
                 "every path out", tl.snapshot_tagged(site.vg, d.lv.name, name, size, [SNAPSHOT_TAG]))
    if not moving:
        plan.noop("no disk needs copying (the target has run from its copies)")
    return plan


def _current_snapshot(facts: HostFacts, lv: LV) -> LV:
    snaps = _move_snapshots(facts, lv)
    need(snaps, f"the snapshot of {lv.path} for the copy is missing on {facts.site.name}; run guest-move again")
    return max(snaps, key=lambda s: (s.created is not None, s.created or datetime.min, s.name))


def _copy(b: Both, guest: str, dev: str) -> Plan:
    d = next(x for x in disks(b, guest) if x.dev == dev)
    src, dst = b.source.site, b.target.site
    plan = Plan(f"copy {d.lv.path} ({human(d.lv.size)}) from {src.name} to {dst.name}")
    if not d.to_copy:
        return plan.noop(_state_text(d))
    if d.state == "new":
        plan.add(f"create {dst.vg}/{d.lv.name} of the same size on {dst.name}, tagged as this move's incomplete copy",
                 tl.lvcreate_tagged(dst.vg, d.lv.name, d.lv.size, [from_tag(b.source, d.lv.name), COPYING]))
    snap, there = tl.device(_current_snapshot(b.source, d.lv)), tl.device_of(dst.vg, d.lv.name)
    copy = Transfer(Endpoint(src.name, tc.dd_read(snap)), Endpoint(dst.name, tc.dd_write(there)), size=d.lv.size,
                    verify=(Endpoint(src.name, sha256_cmd(snap)), Endpoint(dst.name, sha256_cmd(there))),
                    reuse=d.state == COPIED, key=f"{guest} {dev}")
    plan.add(f"stream the snapshot into {dst.vg}/{d.lv.name} through kvmops, then compare the sha256 of both ends"
             + (" (an earlier complete copy: checked first, streamed again only if it differs)" if copy.reuse else ""),
             copy)
    if d.state == COPIED:
        return plan.noop("the copy is marked complete already")
    return plan.add("mark the copy complete: both ends have the same sha256",
                    tl.retag(dst.vg, d.lv.name, add=[COPIED], remove=[COPYING]))


def _cleanup(b: Both, guest: str) -> Plan:
    site = b.source.site
    plan = Plan(f"remove the snapshots of the move on {site.name}")
    snaps = [s for _, lv in source_lvs(b, guest) for s in _move_snapshots(b.source, lv)]
    for s in snaps:
        plan.add(f"remove {s.path} (made for the copy; the disk itself stays as it is)", lvc.lvremove(site.vg, s.name))
    return plan if snaps else plan.noop("no snapshot of the move is left")


def _media(b: Both, guest: str) -> Plan:
    src, dst = b.source.site, b.target.site
    plan = Plan(f"copy the files guest {guest} needs to {dst.name}")
    info = b.source.domain(guest)
    for path in media_of(_xml(info)) if info else ():
        if b.target.exists(path):
            plan.noop(f"{path} is on {dst.name} already: used as it is")
            continue
        part = path + PART
        plan.add(f"copy {path} (it is named in the guest's definition) to {dst.name}, sha256 checked on both ends",
                 Transfer(Endpoint(src.name, tc.cat(path)), Endpoint(dst.name, tc.install_stdin(part)),
                          verify=(Endpoint(src.name, sha256_cmd(path)), Endpoint(dst.name, sha256_cmd(part))),
                          key=f"{guest} {path}"))
        plan.add(f"put it in place as {path}", change_mv(part, path))
    if not plan.steps:
        plan.noop("the guest names no CD-ROM image, kernel or initrd")
    return plan


def change_mv(old: str, new: str) -> Cmd:
    """``mv -- OLD NEW`` (a complete copy put in place in one step)."""
    return change("mv", "--", old, new)


def _define(b: Both, guest: str) -> Plan:
    dst = b.target.site
    plan = Plan(f"define guest {guest} on {dst.name}")
    moving = disks(b, guest)
    if _target_guest(b, guest, moving) is not None:
        return plan.noop(f"guest {guest} is defined on {dst.name} already (this move's own, from an earlier run)")
    info = b.source.domain(guest)
    need(info is not None, f"guest {guest} is not defined on {b.source.site.name}: nothing to define from")
    assert info is not None
    xml = map_xml(_xml(info), mapping(b, guest, moving))
    path = hostfile.xml_path(dst, guest)
    kept = b.target.file(path)
    if kept is None:
        plan.add(f"keep the domain XML in {path} (guide 3.2)", hostfile.write_cmd(path, xml))
    elif kept != xml:
        plan.add(f"replace {path}: it holds another definition (an earlier guest of that name?)",
                 hostfile.write_cmd(path, xml), target=guest)
    return plan.add(f"define guest {guest} on {dst.name} from its definition on {b.source.site.name}: disks and "
                    "bridges mapped, UUID and MAC addresses kept", lifecycle.define_call(dst, guest, xml, None))


def _start(b: Both, guest: str, boot_seconds: float) -> Plan:
    dst = b.target.site
    plan = Plan(f"start guest {guest} on {dst.name} and verify that it boots")
    moving = disks(b, guest)
    there = b.target.domain(guest)
    src = b.source.domain(guest)
    if src is not None and src.active:
        raise SafetyError(f"guest {guest} runs on {b.source.site.name} again: its copy on {dst.name} is not started "
                          "(two would run); shut it down and run guest-move again")
    if there is not None and there.active:
        if all(d.state == BOOTED for d in moving):
            return plan.noop(f"guest {guest} runs on {dst.name}; its boot was verified by an earlier run")
        raise PreconditionFailed(
            f"guest {guest} runs on {dst.name}, but its boot was never verified (no login prompt seen). Look at it "
            f"(guest-unreachable on {dst.name}); then shut it down there and run guest-move again: it is started and "
            "verified then. The source guest stays shut off and defined")
    for d in moving:
        if d.state not in (STARTED, BOOTED):
            plan.add(f"mark {dst.vg}/{d.lv.name} as the guest's disk from now on: never overwritten by a copy again",
                     tl.retag(dst.vg, d.lv.name, add=[STARTED], remove=[t for t in (COPIED, COPYING)
                                                                          if d.there is None or t in d.there.tags]))
    plan.add(f"start guest {guest} on {dst.name}", Call(f"virsh start {guest}", lambda v: v.start(guest)))
    plan.add(f"wait up to {boot_seconds:g} s for a login prompt on its console (it has booted)",
             Wait(f"read the console of {guest} until a login prompt", boot_waiter(guest, boot_seconds)))
    for d in moving:
        if d.state != BOOTED:
            plan.add(f"mark {dst.vg}/{d.lv.name}: the guest booted from it",
                     tl.retag(dst.vg, d.lv.name, add=[BOOTED], remove=[STARTED]))
    return plan


def boot_waiter(name: str, seconds: float) -> Callable[[Host, Progress], None]:
    def run(host: Host, say: Progress) -> None:
        t0 = time.monotonic()
        text = lifecycle.read_console(host, name, seconds, say, until=lifecycle.login_prompt)
        if not lifecycle.login_prompt(text):
            last = [ln for ln in text.splitlines() if ln.strip()][-5:]
            raise BootNotVerified(
                f"guest {name} on {host.name} showed no login prompt within {seconds:g} s (its console's last lines: "
                f"{' | '.join(last) or '(nothing)'}). It is NOT undefined on the source. Look at it with "
                f"guest-unreachable on {host.name}; shut it down there and run guest-move again")
        say(f"{name} booted on {host.name}: login prompt after {time.monotonic() - t0:.0f} s")

    return run


def _undefine(b: Both, guest: str) -> Plan:
    info = b.source.domain(guest)
    if info is None:
        return Plan(f"undefine guest {guest} on {b.source.site.name}").noop(
            f"guest {guest} is not defined on {b.source.site.name} any more")
    there = b.target.domain(guest)
    booted = there is not None and there.active and all(d.state == BOOTED for d in disks(b, guest))
    need(booted, f"guest {guest} is not undefined on {b.source.site.name}: its copy on {b.target.site.name} has not "
         "booted (verified by a login prompt)")
    return lifecycle.undefine(b.source, guest)


def _remove_source(b: Both, guest: str) -> Plan:
    facts = b.source
    plan = Plan(f"remove the source LVs of guest {guest} on {facts.site.name}")
    need(facts.domain(guest) is None, f"guest {guest} is still defined on {facts.site.name}: its LVs stay")
    for lv in _source_removals(facts, tuple(lv for _, lv in source_lvs(b, guest))):
        plan.extend(ops.remove(facts, lv.name))
        facts = replace(facts, lvm=replace(facts.lvm, lvs=tuple(x for x in facts.lvm.lvs if x.name != lv.name)))
    return plan if plan.steps else plan.noop("the source LVs are gone already")


def _restart(b: Both, guest: str, was_running: bool) -> Plan:
    plan = Plan(f"start guest {guest} on {b.source.site.name} again")
    info = b.source.domain(guest)
    there = b.target.domain(guest)
    if not was_running or info is None or info.active:
        return plan.noop(f"guest {guest} on {b.source.site.name} is as it was before the move")
    if (there is not None and there.active) or any(d.state in (STARTED, BOOTED) for d in disks(b, guest)):
        return plan.noop(f"its copy has run on {b.target.site.name}: that is the newer one, the source stays shut off")
    return plan.add(f"start guest {guest} again on {b.source.site.name} (it ran before the move; its copy never ran)",
                    Call(f"virsh start {guest}", lambda v: v.start(guest)))


# -- the preview: each stage planned from the hosts as the stages before would leave them -----


def _domains(facts: HostFacts, guest: str, info: DomainInfo | None) -> HostFacts:
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
    off = _domains(facts, guest, replace(info, state="shut off", active=False))
    return replace(off, lvm=replace(facts.lvm, lvs=lvs))


def _shut(b: Both, guest: str) -> Both:
    return replace(b, source=closed(b.source, guest))


def _snapped(b: Both, guest: str, when: datetime) -> Both:
    snaps = [LV(names.snapshot_name(d.lv.name, when), d.lv.vg, "swi-a-s---", _snap_size(b.source, d.lv), d.lv.name,
                0.0, when, tags=(SNAPSHOT_TAG,)) for d in disks(b, guest) if d.to_copy]
    return replace(b, source=with_lvs(b.source, snaps))


def _tagged(b: Both, guest: str, state: str, devs: tuple[str, ...] | None = None) -> Both:
    """The target's copies tagged ``state`` (a copy the target ran from keeps its tag when copied)."""
    lvs = [LV(d.lv.name, b.target.site.vg, "-wi-a-----", d.lv.size, "", None, None,
              tags=tuple(sorted((from_tag(b.source, d.lv.name), state))))
           for d in disks(b, guest) if (devs is None or d.dev in devs) and (d.to_copy or state != COPIED)]
    return replace(b, target=with_lvs(b.target, lvs))


def _unsnapped(b: Both, guest: str) -> Both:
    gone = {s.name for _, lv in source_lvs(b, guest) for s in _move_snapshots(b.source, lv)}
    return replace(b, source=replace(b.source, lvm=replace(b.source.lvm, lvs=tuple(
        lv for lv in b.source.lvm.lvs if lv.name not in gone))))


def _with_media(b: Both, guest: str) -> Both:
    info = b.source.domain(guest)
    media = media_of(_xml(info)) if info else ()
    return replace(b, target=replace(b.target, paths={**b.target.paths, **{p: True for p in media}}))


def _defined(b: Both, guest: str) -> Both:
    info = b.source.domain(guest)
    if info is None or b.target.domain(guest) is not None:
        return b
    xml = map_xml(_xml(info), mapping(b, guest, disks(b, guest)))
    new = DomainInfo(guest, "shut off", False, False, True, xml, xml)
    return replace(b, target=_domains(b.target, guest, new))


def _booted(b: Both, guest: str) -> Both:
    info = b.target.domain(guest)
    b = _tagged(b, guest, BOOTED)
    return replace(b, target=_domains(b.target, guest, replace(info, state="running", active=True))) if info else b


def _undefined(b: Both, guest: str) -> Both:
    return replace(b, source=_domains(b.source, guest, None))


# -- the procedure ---------------------------------------------------------------------------


def procedure(both: Both, guest: str, when: datetime, *, remove_source_disks: bool = False,
              boot_seconds: float = DEFAULT_BOOT_SECONDS,
              shutdown_timeout: float = lifecycle.DEFAULT_SHUTDOWN_TIMEOUT) -> Staged[Both]:
    """The stages of the move, previewed from ``both`` (each planned again when it runs)."""
    check(both, guest)
    need(boot_seconds > 0 and shutdown_timeout > 0, "boot_seconds and shutdown_timeout must be above 0")
    info = both.source.domain(guest)
    was_running = info is not None and info.active
    staged: Staged[Both] = Staged(f"move guest {guest} from {both.source.site.name} to {both.target.site.name}")
    b = both

    def add(title: str, on: str, fn: Callable[[Both], Plan], after: Callable[[Both], Both] | None = None,
            **flags: bool) -> None:
        nonlocal b
        staged.add(Stage(title, on, fn, **flags), fn(b))
        b = after(b) if after else b

    add("shut the guest down", SOURCE, lambda f: _shutdown(f, guest, shutdown_timeout), lambda x: _shut(x, guest))
    add("snapshot its disks", SOURCE, lambda f: _snapshots(f, guest, when), lambda x: _snapped(x, guest, when))
    for dev in [d.dev for d in disks(both, guest)]:
        add(f"copy disk {dev}", TARGET, _copier(guest, dev), _copied(guest, dev))
    add("remove the snapshots", SOURCE, lambda f: _cleanup(f, guest), lambda x: _unsnapped(x, guest), always=True)
    add("copy the guest's files", TARGET, lambda f: _media(f, guest), lambda x: _with_media(x, guest))
    add("define the guest on the target", TARGET, lambda f: _define(f, guest), lambda x: _defined(x, guest))
    add("start it there and verify that it boots", TARGET, lambda f: _start(f, guest, boot_seconds),
        lambda x: _booted(x, guest))
    add("undefine it on the source", SOURCE, lambda f: _undefine(f, guest), lambda x: _undefined(x, guest))
    if remove_source_disks:
        add("remove the source LVs", SOURCE, lambda f: _remove_source(f, guest))
    staged.add(Stage("start the source guest again", SOURCE, lambda f: _restart(f, guest, was_running),
                     on_failure=True), _restart(_shut(both, guest), guest, was_running))
    return staged


def _copier(guest: str, dev: str) -> Callable[[Both], Plan]:
    return lambda f: _copy(f, guest, dev)


def _copied(guest: str, dev: str) -> Callable[[Both], Both]:
    return lambda b: _tagged(b, guest, COPIED, (dev,))


def run(source: Host, target: Host, staged: Staged[Both], guest: str, *confirm: str,
        progress: Progress | None = None) -> list[str]:
    """Run the move (apply) or walk its plan; every confirmation is checked before the first change."""
    from kvmops.executor import confirmed
    from kvmops.transfer.stages import executors, run_staged

    need(source.apply == target.apply, "both hosts must be opened in the same mode (apply or plan)")
    ex = executors({SOURCE: source, TARGET: target}, progress)
    return run_staged(staged, ex, lambda: read_both(source, target, guest), confirmed(*confirm))


# -- verification ----------------------------------------------------------------------------


def verify(both: Both, guest: str, lvs: tuple[str, ...], removed: bool) -> Verdict:
    """The guest runs on the target from its copies (booted), is undefined on the source with its
    XML kept, no snapshot of the move is left, the source LVs kept or removed as asked."""
    src, dst = both.source, both.target
    there = dst.domain(guest)
    kept = hostfile.xml_path(src.site, guest) + hostfile.UNDEFINED_SUFFIX
    checks = [(there is not None and there.active, f"guest {guest} runs on {dst.site.name}"),
              (src.domain(guest) is None, f"guest {guest} is no longer defined on {src.site.name}"),
              (src.exists(kept), f"its definition is kept on {src.site.name} in {kept}")]
    for name in lvs:
        copy = dst.lvm.get(name)
        disk_lvs = {p.split("/")[1] for p in dst.disks_of.get(guest, ())}
        checks.append((copy is not None and BOOTED in copy.tags and name in disk_lvs,
                       f"{dst.site.vg}/{name} on {dst.site.name} is its disk, its copy checked and booted from"))
        left = src.lvm.get(name)
        checks.append((left is None if removed else left is not None,
                       f"{src.site.vg}/{name} on {src.site.name} is " + ("removed" if removed else "kept (remove it "
                                                                         "later with confirm_disks)")))
        checks += [(False, f"the snapshot {s.path} is left") for s in src.lvm.snapshots_of(name)
                   if SNAPSHOT_TAG in s.tags]
    return Verdict.of(checks)


def verify_wanted(site_of_source: Host, guest: str) -> Wanted:
    return Wanted(paths=(hostfile.xml_path(site_of_source.site, guest) + hostfile.UNDEFINED_SUFFIX,))
