"""guest-inspect: look inside a shut-off guest's disk (or a raw image file), read-only.

- :func:`check`: the guest is not running; its LV exists, or the image is raw and used by
  no running guest.
- :func:`preview`: every command the inspection runs (all read-only), shown first.
- :func:`inspect`: the partition table it is about to map (``kpartx -l``; ``partx --show``
  for a file), then mapped read-only, the root mounted ``-o ro``, os-release, fstab,
  accounts, the journal (or the log files), df read; unmounted and unmapped on every path.
- :func:`look_inside`: :func:`inspect` with facts read just before, holding the guest's lock
  (a run that changes the guest is refused meanwhile); on a recorded host (the demo) nothing
  can be mapped, which it says (:class:`Inspection`).
- :func:`verify`: nothing of it is left mapped or mounted.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvmops.facts import inspect as inspect_facts
from kvmops.facts.disk import open_disk
from kvmops.facts.mount import image_root
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.images import inspect as ins
from kvmops.images import partitions as pt
from kvmops.plan import Plan, Progress
from kvmops.procedures import disks
from kvmops.procedures.base import Verdict
from kvmops.units import human

source, wanted = disks.source, disks.wanted


def check(facts: HostFacts, guest: str, image: str = "") -> str:
    """The guest is not running; its LV exists, or the raw image is used by no running guest."""
    found = disks.shut_off_disk(
        facts, guest, image, running="its disk must not be mapped or mounted now; shut it down first "
        "(guest-lifecycle action=shutdown), or use guest-unreachable", not_raw="only raw images can be mapped; "
        "inspect the LV it was copied to, or convert it with qemu-img convert -O raw")
    return found if isinstance(found, str) else f"{found.path}: {human(found.size)}; guest {guest} is not running"


def preview(where: dict[str, str], lines: int = 30) -> Plan:
    """The read-only commands of :func:`inspect`, placeholders for what exists once mapped."""
    if "image" in where:
        return ins.preview(image=where["image"], lines=lines)
    vg, _, lv = where["lv"].partition("/")
    return ins.preview(vg=vg, lv=lv, lines=lines)


def inspect(host: Host, facts: HostFacts, where: dict[str, str], lines: int = 30,
            say: Progress = print) -> ins.DiskReport:
    """Read the disk: its partition table first (what is about to be mapped), then mapped and
    mounted read-only and read; unmounted and unmapped on every path (``facts``: read just
    before, for the mapping's guards)."""
    runner = host.runner
    if "image" in where:
        table = runner.run(ins.table_cmd(image=where["image"])).stdout
    else:
        vg, _, lv = where["lv"].partition("/")
        table = runner.run(ins.table_cmd(device=pt.lv_mapper_path(vg, lv))).stdout
    say(f"partition table about to be mapped:\n{table.rstrip()}")
    with open_disk(runner, facts, image=where.get("image"), lv=where.get("lv")) as disk, \
            image_root(runner, disk) as root:
        say(f"mounted {root.device} ({root.fstype}) read-only at {root.mountpoint}")
        return inspect_facts.read_report(runner, disk, root, lines, table=table)


@dataclass(frozen=True)
class Inspection:
    """What an inspection read (``report``), or, when it read nothing, why (``skipped``)."""

    report: ins.DiskReport | None
    skipped: str = ""

    def render(self) -> str:
        return ins.render(self.report) if self.report is not None else self.skipped


def look_inside(host: Host, guest: str, where: dict[str, str], lines: int = 30,
                say: Progress = print) -> Inspection:
    """:func:`inspect`, holding the guest's lock (:func:`~kvmops.procedures.disks.look_read_only`).
    A recorded host (the demo) answers only its recorded facts: nothing is mapped or read
    there, and the inspection says so."""
    report = disks.look_read_only(host, guest, "guest-inspect", lambda facts: inspect(host, facts, where, lines, say))
    if report is None:
        return Inspection(None, disks.recorded_note(host, "nothing above was run and nothing was read"))
    return Inspection(report)


def render(report: ins.DiskReport) -> str:
    return ins.render(report)


def verify(host: Host, inspection: Inspection) -> Verdict:
    """Nothing of the inspection is left: no mount, mount point, partition device or loop device."""
    report = inspection.report
    if report is None:
        return Verdict.of([(True, "nothing was mapped or mounted (the inspection read nothing)")])
    left = inspect_facts.leftovers(host.runner, report)
    return Verdict.of([(not left, f"{report.source} is unmounted and unmapped again ({report.mountpoint} removed)"
                        if not left else "left behind: " + "; ".join(left))])
