"""Changes inside a guest disk, as phases of a procedure that hold the disk: grow its root
(partition, then filesystem) and the offline tweaks.

Each phase holds the disk (:class:`~kvmops.executor.Hold`: mapped with kpartx, or an image
file on a loop device; its root mounted where needed; read-write), reads what it plans from
while holding it, and is planned from that just before it runs; consecutive phases share the
mapping, which is undone on every path out. Plan mode reads the disk through a read-only
mapping first (:func:`kvmops.facts.grow.look`, :func:`kvmops.facts.tweaks.look`) and shows the
phases as they would run. The safety gate judges the hold and every step inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from kvmops.executor import Executor, Hold, Phase, Procedure
from kvmops.facts import grow as grow_facts
from kvmops.facts import read_facts
from kvmops.facts import tweaks as tweak_facts
from kvmops.host import Host
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.images import grow as g
from kvmops.images import tweaks as tw
from kvmops.images.grow import DiskFacts
from kvmops.images.tweaks import Look
from kvmops.lock import guest_lock
from kvmops.lvm.facts import LV
from kvmops.plan import Plan, Progress
from kvmops.procedures.base import need
from kvmops.runners.recorded import NotRecorded
from kvmops.site import Site
from kvmops.units import human

T = TypeVar("T")


def look_read_only(host: Host, guest: str, what: str, read: Callable[[HostFacts], T]) -> T | None:
    """``read(facts)``: a disk looked at through a transient read-only mapping, with the facts
    read just before (for the mapping's guards), holding the guest's lock meanwhile (a run
    that changes the guest is refused while the disk is mapped here, and this waits for none).
    None on a recorded host (the demo): it answers only its recorded facts, no disk can be
    mapped there (the caller says so)."""
    try:
        with guest_lock(host.runner, guest, what):
            return read(read_facts(host))
    except NotRecorded:
        return None


def recorded_note(host: Host, what: str) -> str:
    """What a runbook says where :func:`look_read_only` found a recorded host."""
    return (f"SKIPPED: site {host.site.name} replays recorded outputs; a disk cannot be mapped or mounted there, "
            f"so {what}. Run this against the real host (plan mode only maps and mounts read-only).")


def source(site: Site, guest: str, image: str = "") -> dict[str, str]:
    """The disk a runbook works on: ``{"image": PATH}`` or ``{"lv": "VG/LV"}`` (the guest's system disk)."""
    return {"image": image} if image else {"lv": f"{site.vg}/{site.guest_lv(guest)}"}


def wanted(image: str = "") -> Wanted:
    """Besides LVM and the guests: the image file, probed (not recorded: it does not exist)."""
    return Wanted(images=(image,)) if image else Wanted()


def shut_off_disk(facts: HostFacts, guest: str, image: str, *, running: str, not_raw: str) -> str | LV:
    """The guest is not running, and its disk can be mapped: a raw ``image`` no running guest
    uses (its summary line), or the guest's LV (returned); ``running`` and ``not_raw`` say what
    to do instead."""
    info = facts.domain(guest)
    need(info is None or not info.active, f"guest {guest} is running: {running}")
    if image:
        users = facts.running_guests_with_file(image)
        need(not users, f"{image} is a disk of running guest(s) {', '.join(users)}: shut them down first")
        probed = facts.image(image)
        need(probed.format == "raw", f"{image} is a {probed.format} image: {not_raw}")
        return f"image {image}: raw, {human(probed.virtual_size)}"
    lv = facts.site.guest_lv(guest)
    found = facts.lvm.get(lv)
    need(found is not None, f"guest {guest}: LV {facts.site.vg}/{lv} does not exist (see the inventory runbook)")
    assert found is not None
    return found


def _where(lv: str | None, image: str | None) -> dict[str, str]:
    return {"lv": lv} if lv else {"image": image or ""}


def _disk_facts(facts: HostFacts) -> DiskFacts:
    data = facts.holding().data
    assert isinstance(data, DiskFacts), "a grow phase reads DiskFacts while it holds the disk"
    return data


def grow_phases(seen: DiskFacts, *, lv: str | None = None, image: str | None = None,
                disk_size: int | None = None) -> list[tuple[Phase, Plan]]:
    """The partition and the filesystem phases of growing a root, with their previews from
    ``seen`` (the disk read before; ``disk_size``: its size once the LV grew)."""
    mount = not seen.root.fstype.startswith("ext")
    first = Phase(f"grow partition {seen.part.number} of {seen.source}", lambda f: g.partition_plan(_disk_facts(f)),
                  hold=Hold(lv=lv or "", image=image or "", read=grow_facts.read_held))

    def second_plan(f: HostFacts) -> Plan:
        held = f.holding()
        plan = g.fs_plan(_disk_facts(f), held.root.mountpoint if held.root else "")
        return plan

    second = Phase(f"grow the {seen.root.fstype} filesystem", second_plan,
                   hold=Hold(lv=lv or "", image=image or "", root=mount, read=grow_facts.read_held))
    previews = g.preview(seen, disk_size)
    return [(first, previews[0]), (second, previews[1])]


def grow_procedure(facts: HostFacts, seen: DiskFacts, *, lv: str | None = None, image: str | None = None,
                   disk_size: int | None = None) -> Procedure:
    proc = Procedure(f"grow the root of {seen.source}", facts=facts)
    for phase, preview in grow_phases(seen, lv=lv, image=image, disk_size=disk_size):
        proc.add(phase, preview)
    return proc


def grow(host: Host, facts: HostFacts, *, image: str | None = None, lv: str | None = None,
         progress: Progress | None = None) -> list[Plan]:
    """Grow the root partition, then its filesystem (each phase planned from the disk as it is
    just before it runs); returns the plans as they ran (applied) or as previewed (plan mode)."""
    seen = grow_facts.look(host.runner, facts, **_where(lv, image))
    proc = grow_procedure(facts, seen, lv=lv, image=image)
    ex = Executor(host, progress)
    ex.run_procedure(proc)
    return ex.ran if host.apply else proc.preview


@dataclass
class TweakRun:
    """What the tweak phase planned when it ran: each tweak's plan and outcome."""

    report: tw.TweakReport | None = None


def tweak_phase(tweaks: Sequence[tw.Tweak], *, lv: str | None = None, image: str | None = None,
                ran: TweakRun | None = None) -> Phase:
    """The tweaks as one phase: the disk held read-write with its root mounted, the content
    read from there, every tweak planned from it (in order) and run."""
    def plan(f: HostFacts) -> Plan:
        held = f.holding()
        seen = held.data
        assert isinstance(seen, Look) and held.root is not None
        report = tw.planned(seen, tweaks, held.root.mountpoint, applied=True)
        if ran is not None:
            ran.report = report
        return tw.joined(report.plans, f"offline tweaks of {held.source} ({seen.os})")

    hold = Hold(lv=lv or "", image=image or "", root=True, read=tweak_facts.reader(tweaks))
    return Phase(f"offline tweaks of {lv or image}", plan, hold=hold)


def tweak_image(host: Host, facts: HostFacts, tweaks: Sequence[tw.Tweak], *, image: str | None = None,
                lv: str | None = None, progress: Progress | None = None) -> tw.TweakReport:
    """Tweak an image file or a guest LV (``lv="VG/LV"``): looked at read-only and planned;
    applied (read and planned again from the read-write mount) only when ``host.apply``."""
    seen = tweak_facts.look(host.runner, facts, tweaks, **_where(lv, image))
    report = tw.planned(seen, tweaks)
    ran = TweakRun()
    proc = Procedure(f"tweak {lv or image}", facts=facts)
    proc.add(tweak_phase(tweaks, lv=lv, image=image, ran=ran), tw.joined(report.plans))
    Executor(host, progress).run_procedure(proc)
    return ran.report if host.apply and ran.report is not None else report


def size_line(d: DiskFacts) -> str:
    return (f"root: {d.root.partition.node} ({d.root.fstype}), partition {human(d.part_size)}, "
            f"filesystem {human(d.fs_bytes) if d.fs_bytes else 'of unknown size'}")


