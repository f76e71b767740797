"""The stages of guest-move: each a plan over fresh facts of both hosts (:class:`Both`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from kvmops import names
from kvmops.cmd import Cmd, change
from kvmops.errors import SafetyError
from kvmops.guests import hostfile, lifecycle
from kvmops.hostfacts import lv_free
from kvmops.lvm import commands as lvc
from kvmops.lvm import ops
from kvmops.plan import Booted, Call, Endpoint, Plan, Transfer, Wait
from kvmops.procedures import move_facts as mf
from kvmops.procedures.base import PreconditionFailed, need
from kvmops.transfer import commands as tc
from kvmops.transfer import lvm as tl
from kvmops.transfer.result import sha256_cmd
from kvmops.transfer.xmlmap import map_xml, media_of
from kvmops.units import human


def shutdown(b: mf.Both, guest: str, timeout: float) -> Plan:
    info = b.source.domain(guest)
    if info is None:
        return Plan(f"shut down guest {guest} on {b.source.site.name}").noop(
            f"guest {guest} is no longer defined on {b.source.site.name} (moved already)")
    there = b.target.domain(guest)
    if info.active and there is not None and there.active:
        raise SafetyError(f"guest {guest} runs on both {b.source.site.name} and {b.target.site.name}: nothing "
                          "was changed; decide which is the real one and shut the other down")
    return lifecycle.shutdown(b.source, guest, timeout=timeout)


def snapshots(b: mf.Both, guest: str, when: datetime) -> Plan:
    site = b.source.site
    plan = Plan(f"snapshot the disks of {guest} on {site.name} for the copy")
    moving = [d for d in mf.disks(b, guest) if d.to_copy]
    for d in moving:
        lv_free(b.source, d.lv, "the snapshot for the move")
        for old in mf.move_snapshots(b.source, d.lv):
            plan.add(f"remove {old.path}, the snapshot of an interrupted earlier run (its data may be older than "
                     f"{d.lv.name}'s)", lvc.lvremove(site.vg, old.name))
        name = names.snapshot_name(d.lv.name, when)
        clash = b.source.lvm.get(name)
        if clash is not None and mf.SNAPSHOT_TAG not in clash.tags:
            raise SafetyError(f"{clash.path} exists (a snapshot of the same minute, not this move's): run again in a "
                              "minute; nothing was changed")
        size = mf.snap_size(b.source, d.lv)
        plan.add(f"snapshot {d.lv.path} as {name} ({human(size)}) for the copy's duration; removed after it, on "
                 "every path out", tl.snapshot_tagged(site.vg, d.lv.name, name, size, [mf.SNAPSHOT_TAG]))
    if not moving:
        plan.noop("no disk needs copying (the target has run from its copies)")
    return plan


def copy(b: mf.Both, guest: str, dev: str) -> Plan:
    d = next((x for x in mf.disks(b, guest) if x.dev == dev), None)
    need(d is not None, f"guest {guest} has no disk {dev} any more: its definition changed; run guest-move again")
    assert d is not None
    src, dst = b.source.site, b.target.site
    plan = Plan(f"copy {d.lv.path} ({human(d.lv.size)}) from {src.name} to {dst.name}")
    if not d.to_copy:
        return plan.noop(mf.state_text(d))
    if d.state == "new":
        plan.add(f"create {dst.vg}/{d.lv.name} of the same size on {dst.name}, tagged as this move's incomplete copy",
                 tl.lvcreate_tagged(dst.vg, d.lv.name, d.lv.size, [mf.from_tag(b.source, d.lv.name), mf.COPYING]))
    snap, there = tl.device(mf.current_snapshot(b.source, d.lv)), tl.device_of(dst.vg, d.lv.name)
    # the snapshot cannot change while it streams: the stream's sha256 is its own (in flight)
    copy = Transfer(Endpoint(src.name, tc.dd_read(snap)), Endpoint(dst.name, tc.dd_write(there)), size=d.lv.size,
                    verify=(Endpoint(dst.name, sha256_cmd(there)),), source_sum=Endpoint(src.name, sha256_cmd(snap)),
                    reuse=d.state == mf.COPIED, key=f"{guest} {dev}")
    plan.add(f"stream the snapshot into {dst.vg}/{d.lv.name} through kvmops (its sha256 computed on the way), then "
             "read the copy back: the same sha256 on both ends"
             + (" (an earlier complete copy: checked first, streamed again only if it differs)" if copy.reuse else ""),
             copy)
    if d.state == mf.COPIED:
        return plan.noop("the copy is marked complete already")
    return plan.add("mark the copy complete: both ends have the same sha256",
                    tl.retag(dst.vg, d.lv.name, add=[mf.COPIED], remove=[mf.COPYING]))


def cleanup(b: mf.Both, guest: str) -> Plan:
    site = b.source.site
    plan = Plan(f"remove the snapshots of the move on {site.name}")
    snaps = [s for _, lv in mf.source_lvs(b, guest) for s in mf.move_snapshots(b.source, lv)]
    for s in snaps:
        plan.add(f"remove {s.path} (made for the copy; the disk itself stays as it is)", lvc.lvremove(site.vg, s.name))
    return plan if snaps else plan.noop("no snapshot of the move is left")


def media(b: mf.Both, guest: str) -> Plan:
    src, dst = b.source.site, b.target.site
    plan = Plan(f"copy the files guest {guest} needs to {dst.name}")
    info = b.source.domain(guest)
    for path in media_of(mf.xml_of(info)) if info else ():
        if b.target.exists(path):
            plan.noop(f"{path} is on {dst.name} already: used as it is")
            continue
        part = path + mf.PART
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


def define(b: mf.Both, guest: str) -> Plan:
    dst = b.target.site
    plan = Plan(f"define guest {guest} on {dst.name}")
    moving = mf.disks(b, guest)
    if mf.target_guest(b, guest, moving) is not None:
        return plan.noop(f"guest {guest} is defined on {dst.name} already (this move's own, from an earlier run)")
    info = b.source.domain(guest)
    need(info is not None, f"guest {guest} is not defined on {b.source.site.name}: nothing to define from")
    assert info is not None
    xml = map_xml(mf.xml_of(info), mf.mapping(b, guest, moving))
    path = hostfile.xml_path(dst, guest)
    kept = b.target.file(path)
    if kept is None:
        plan.add(f"keep the domain XML in {path} (guide 3.2)", hostfile.write_cmd(path, xml))
    elif kept != xml:
        plan.add(f"replace {path}: it holds another definition (an earlier guest of that name?)",
                 hostfile.write_cmd(path, xml), target=guest)
    return plan.add(f"define guest {guest} on {dst.name} from its definition on {b.source.site.name}: disks and "
                    "bridges mapped, UUID and MAC addresses kept", lifecycle.define_call(dst, guest, xml, None))


def start(b: mf.Both, guest: str, boot_seconds: float) -> Plan:
    dst = b.target.site
    plan = Plan(f"start guest {guest} on {dst.name} and verify that it boots")
    moving = mf.disks(b, guest)
    there = b.target.domain(guest)
    src = b.source.domain(guest)
    if src is not None and src.active:
        raise SafetyError(f"guest {guest} runs on {b.source.site.name} again: its copy on {dst.name} is not started "
                          "(two would run); shut it down and run guest-move again")
    if there is not None and there.active:
        if all(d.state == mf.BOOTED for d in moving):
            return plan.noop(f"guest {guest} runs on {dst.name}; its boot was verified by an earlier run")
        raise PreconditionFailed(
            f"guest {guest} runs on {dst.name}, but its boot was never verified (no login prompt seen). Look at it "
            f"(guest-unreachable on {dst.name}); then shut it down there and run guest-move again: it is started and "
            "verified then. The source guest stays shut off and defined")
    for d in moving:
        if d.state not in (mf.STARTED, mf.BOOTED):
            plan.add(f"mark {dst.vg}/{d.lv.name} as the guest's disk from now on: never overwritten by a copy again",
                     tl.retag(dst.vg, d.lv.name, add=[mf.STARTED], remove=[t for t in (mf.COPIED, mf.COPYING)
                                                                          if d.there is None or t in d.there.tags]))
    if src is not None and src.autostart and not (there is not None and there.autostart):
        plan.add(f"autostart guest {guest} on {dst.name}, as on {b.source.site.name}",
                 Call("autostart", guest, f"virsh autostart {guest}", flag=True))
    plan.add(f"start guest {guest} on {dst.name}", Call("start", guest))
    plan.add(f"wait up to {boot_seconds:g} s for a login prompt on its console (it has booted)",
             Wait(f"read the console of {guest} until a login prompt", Booted(guest, boot_seconds, way_out=(
                 f"It is NOT undefined on {b.source.site.name}. Look at it with guest-unreachable on {dst.name}; "
                 "shut it down there and run guest-move again"))))
    for d in moving:
        if d.state != mf.BOOTED:
            plan.add(f"mark {dst.vg}/{d.lv.name}: the guest booted from it",
                     tl.retag(dst.vg, d.lv.name, add=[mf.BOOTED], remove=[mf.STARTED]))
    return plan


def undefine(b: mf.Both, guest: str) -> Plan:
    info = b.source.domain(guest)
    if info is None:  # undefined already; its kept XML is still retired if an interrupted run left it in place
        plan = lifecycle.undefine(b.source, guest)
        return plan if plan.steps else Plan(f"undefine guest {guest} on {b.source.site.name}").noop(
            f"guest {guest} is not defined on {b.source.site.name} any more")
    there = b.target.domain(guest)
    booted = there is not None and there.active and all(d.state == mf.BOOTED for d in mf.disks(b, guest))
    need(booted, f"guest {guest} is not undefined on {b.source.site.name}: its copy on {b.target.site.name} has not "
         "booted (verified by a login prompt)")
    return lifecycle.undefine(b.source, guest)


def remove_source(b: mf.Both, guest: str) -> Plan:
    facts = b.source
    plan = Plan(f"remove the source LVs of guest {guest} on {facts.site.name}")
    need(facts.domain(guest) is None, f"guest {guest} is still defined on {facts.site.name}: its LVs stay")
    for lv in mf.source_removals(facts, tuple(lv for _, lv in mf.source_lvs(b, guest))):
        plan.extend(ops.remove(facts, lv.name))
        facts = replace(facts, lvm=replace(facts.lvm, lvs=tuple(x for x in facts.lvm.lvs if x.name != lv.name)))
    return plan if plan.steps else plan.noop("the source LVs are gone already")


def restart(b: mf.Both, guest: str, was_running: bool) -> Plan:
    plan = Plan(f"start guest {guest} on {b.source.site.name} again")
    info = b.source.domain(guest)
    there = b.target.domain(guest)
    if not was_running or info is None or info.active:
        return plan.noop(f"guest {guest} on {b.source.site.name} is as it was before the move")
    if (there is not None and there.active) or any(d.state in (mf.STARTED, mf.BOOTED) for d in mf.disks(b, guest)):
        return plan.noop(f"its copy has run on {b.target.site.name}: that is the newer one, the source stays shut off")
    return plan.add(f"start guest {guest} again on {b.source.site.name} (it ran before the move; its copy never ran)",
                    Call("start", guest))


