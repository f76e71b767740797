"""guest-inspect: look inside a shut-off guest's disk (or a raw image file), read-only.

- :func:`check`: the guest is not running; its LV exists, or the image is raw and used by
  no running guest.
- :func:`preview`: every command the inspection runs (all read-only), shown first.
- :func:`inspect`: the partition table it is about to map (``kpartx -l``; ``partx --show``
  for a file), then mapped read-only, the root mounted ``-o ro``, os-release, fstab,
  accounts, the journal (or the log files), df read; unmounted and unmapped on every path.
- :func:`verify`: nothing of it is left mapped or mounted.
"""

from __future__ import annotations

from kvmops.facts import inspect as inspect_facts
from kvmops.facts.disk import open_disk
from kvmops.facts.mount import image_root
from kvmops.host import Host
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.images import inspect as ins
from kvmops.images import partitions as pt
from kvmops.plan import Plan, Progress
from kvmops.procedures.base import Verdict, need
from kvmops.site import Site
from kvmops.units import human


def source(site: Site, guest: str, image: str = "") -> dict[str, str]:
    """What to inspect: ``{"image": PATH}`` or ``{"lv": "VG/LV"}`` (the guest's system disk)."""
    return {"image": image} if image else {"lv": f"{site.vg}/{site.guest_lv(guest)}"}


def wanted(image: str = "", replay: bool = False) -> Wanted:
    return Wanted(images=(image,)) if image and not replay else Wanted()


def check(facts: HostFacts, guest: str, image: str = "", *, replay: bool = False) -> str:
    info = facts.domain(guest)
    need(info is None or not info.active, f"guest {guest} is running: its disk must not be mapped or mounted "
         "now; shut it down first (guest-lifecycle action=shutdown), or use guest-unreachable")
    if image:
        users = facts.running_guests_with_file(image)
        need(not users, f"{image} is a disk of running guest(s) {', '.join(users)}: shut them down first")
        if replay:
            return f"image {image}: not probed (recorded facts)"
        probed = facts.image(image)
        need(probed.format == "raw", f"{image} is a {probed.format} image: only raw images can be mapped; "
             "inspect the LV it was copied to, or convert it with qemu-img convert -O raw")
        return f"image {image}: raw, {human(probed.virtual_size)}"
    lv = facts.site.guest_lv(guest)
    found = facts.lvm.get(lv)
    need(found is not None, f"guest {guest}: LV {facts.site.vg}/{lv} does not exist (see the inventory runbook)")
    assert found is not None
    return f"{found.path}: {human(found.size)}; guest {guest} is not running"


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


def render(report: ins.DiskReport) -> str:
    return ins.render(report)


def verify(host: Host, report: ins.DiskReport) -> Verdict:
    """Nothing of the inspection is left: no mount, mount point, partition device or loop device."""
    left = inspect_facts.leftovers(host.runner, report)
    return Verdict.of([(not left, f"{report.source} is unmounted and unmapped again ({report.mountpoint} removed)"
                        if not left else "left behind: " + "; ".join(left))])
