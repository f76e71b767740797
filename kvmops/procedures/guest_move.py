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

from collections.abc import Callable
from datetime import datetime

from kvmops.guests import hostfile, lifecycle
from kvmops.host import Host
from kvmops.hostfacts import Wanted
from kvmops.plan import Plan, Progress
from kvmops.procedures import move_preview as pv
from kvmops.procedures import move_stages as st
from kvmops.procedures.base import Verdict, need
from kvmops.procedures.move_facts import (
    BOOTED,
    COPIED,
    COPYING,
    DEFAULT_BOOT_SECONDS,
    SNAPSHOT_TAG,
    SOURCE,
    STARTED,
    TARGET,
    Both,
    Disk,
    disks,
    from_tag,
    mapping,
    read_both,
    snap_size,
    source_lvs,
    source_removals,
    state_text,
    target_guest,
    xml_of,
)
from kvmops.procedures.move_preview import closed
from kvmops.procedures.stages import Ran, Stage, Staged, run_on
from kvmops.transfer.xmlmap import media_of
from kvmops.units import human

__all__ = ["BOOTED", "COPIED", "COPYING", "SNAPSHOT_TAG", "STARTED", "Both", "Disk",
           "check", "closed", "disk_targets", "disks", "from_tag", "procedure", "read_both", "run", "source_lvs",
           "verify", "verify_wanted"]


def check(both: Both, guest: str) -> str:
    """Everything a move needs, or a refusal saying what to do; a summary of what will happen."""
    moving = disks(both, guest)
    there = target_guest(both, guest, moving)
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
    snaps = sum(snap_size(both.source, d.lv) for d in moving if d.to_copy)
    need(snaps <= both.source.lvm.vg.free, f"the source VG {src.vg} has {human(both.source.lvm.vg.free)} free; the "
         f"snapshots for the copy need {human(snaps)}")
    m = mapping(both, guest, moving)
    lines.append(f"guest {guest} on {src.name}: {info.state}" + (" (shut down for the move)" if info.active else ""))
    lines += [f"disk {d.dev}: {d.lv.path} ({human(d.lv.size)}) -> {dst.name}:{dst.vg}/{d.lv.name}: {state_text(d)}"
              for d in moving]
    lines += [f"bridge {old} -> {new} (VLAN {src.network_by_bridge(old).vlan})" for old, new in m.bridges.items()]
    lines += [f"file {p}: " + ("on the target already (used as it is)" if both.target.exists(p) else "copied")
              for p in media_of(xml_of(info))]
    if there is not None:
        lines.append(f"guest {guest} on {dst.name}: {there.state} (this move's own, from an earlier run)")
    lines.append(f"the target VG {dst.vg} has {human(both.target.lvm.vg.free)} free")
    return "\n".join(lines)


def disk_targets(both: Both, guest: str) -> str:
    """What ``confirm_disks`` must say to remove the source LVs: each, snapshots first."""
    return ",".join(lv.path for lv in source_removals(both.source, tuple(lv for _, lv in source_lvs(both, guest))))


def procedure(both: Both, guest: str, when: datetime, *, remove_source_disks: bool = False,
              boot_seconds: float = DEFAULT_BOOT_SECONDS,
              shutdown_timeout: float = lifecycle.DEFAULT_SHUTDOWN_TIMEOUT) -> Staged[Both]:
    """The stages of the move, previewed from ``both`` (each planned again when it runs)."""
    check(both, guest)
    need(boot_seconds > 0 and shutdown_timeout > 0, "boot_seconds and shutdown_timeout must be above 0")
    info = both.source.domain(guest)
    was_running = info is not None and info.active
    staged: Staged[Both] = Staged(f"move guest {guest} from {both.source.site.name} to {both.target.site.name}",
                                  facts_of=lambda b, side: b.source if side == SOURCE else b.target)
    b = both

    def add(title: str, on: str, fn: Callable[[Both], Plan], after: Callable[[Both], Both] | None = None,
            **flags: bool) -> None:
        nonlocal b
        staged.add(Stage(title, on, fn, always=flags.get("always", False),
                         on_failure=flags.get("on_failure", False)), fn(b))
        b = after(b) if after else b

    add("shut the guest down", SOURCE, lambda f: st.shutdown(f, guest, shutdown_timeout), lambda x: pv.shut(x, guest))
    add("snapshot its disks", SOURCE, lambda f: st.snapshots(f, guest, when), lambda x: pv.snapped(x, guest, when))
    for dev in [d.dev for d in disks(both, guest)]:
        add(f"copy disk {dev}", TARGET, _copier(guest, dev), _copied(guest, dev))
    add("remove the snapshots", SOURCE, lambda f: st.cleanup(f, guest), lambda x: pv.unsnapped(x, guest), always=True)
    add("copy the guest's files", TARGET, lambda f: st.media(f, guest), lambda x: pv.with_media(x, guest))
    add("define the guest on the target", TARGET, lambda f: st.define(f, guest), lambda x: pv.defined(x, guest))
    add("start it there and verify that it boots", TARGET, lambda f: st.start(f, guest, boot_seconds),
        lambda x: pv.booted(x, guest))
    add("undefine it on the source", SOURCE, lambda f: st.undefine(f, guest), lambda x: pv.undefined(x, guest))
    if remove_source_disks:
        add("remove the source LVs", SOURCE, lambda f: st.remove_source(f, guest))
        staged.preview[-1].notes.append(f"to remove the source LVs set confirm_disks={disk_targets(both, guest)!r}")
    staged.add(Stage("start the source guest again", SOURCE, lambda f: st.restart(f, guest, was_running),
                     on_failure=True), st.restart(pv.shut(both, guest), guest, was_running))
    return staged


def _copier(guest: str, dev: str) -> Callable[[Both], Plan]:
    return lambda f: st.copy(f, guest, dev)


def _copied(guest: str, dev: str) -> Callable[[Both], Both]:
    return lambda b: pv.tagged(b, guest, COPIED, (dev,))


def run(source: Host, target: Host, staged: Staged[Both], guest: str, *confirm: str,
        progress: Progress | None = None) -> Ran:
    """Run the move (apply) or walk its plan; every confirmation is checked before the first change.
    The result has a line per step and each disk's copy (its sha256 on both ends)."""
    from kvmops.executor import confirmed

    return run_on({SOURCE: source, TARGET: target}, staged, lambda _ex: read_both(source, target, guest),
                  confirmed(*confirm), progress)


# -- verification ----------------------------------------------------------------------------


def verify(both: Both, before: Both, guest: str, removed: bool) -> Verdict:
    """The guest runs on the target from its copies (booted) of the LVs it had ``before``, is
    undefined on the source with its XML kept, no snapshot of the move is left, the source LVs
    kept or removed as asked."""
    lvs = tuple(lv.name for _, lv in source_lvs(before, guest))
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
