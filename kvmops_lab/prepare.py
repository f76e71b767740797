"""First boot of a lab, through kvmops' own SSH runner; every step is idempotent.

- VG ``rl_build``: ``vgcreate rl_build /dev/disk/by-id/virtio-kvmops-pv`` when ``vgs`` lacks
  it (vgcreate initialises the blank disk as a PV itself).
- The guests' domain type: ``kvm`` when a KVM guest boots inside the lab (probed once, see
  :mod:`kvmops_lab.guest_accel`), else ``qemu``; the site file is rewritten with it.
- The guest images, when attached as read-only disks: the small busybox guest copied to
  ``/var/lib/kvmops/images/guest.raw``, the realistic cloud image to ``.../cloud.raw``
  (sparse) so runbooks can copy them like the guide does.

This provisions the host kvmops then manages, so its plan is run step by step over SSH, not by
kvmops' executor: the executor's safety gate judges changes to a host that has the site's VG
(it reads the VG's facts first) and knows no ``vgcreate`` or ``cp`` of a disk, rightly: kvmops
never creates a VG or copies a raw device on a host it manages.
"""

from __future__ import annotations

from pathlib import Path

from kvmops.cmd import change, read
from kvmops.host import Host, connect
from kvmops.lvm.facts import VG, parse_vgs, vgs_cmd
from kvmops.plan import Plan
from kvmops.site import load_site
from kvmops_lab.cloud_image import IN_LAB_FILE
from kvmops_lab.guest_accel import decide_guest_domain_type
from kvmops_lab.paths import LabPaths
from kvmops_lab.progress import Phases
from kvmops_lab.qemu import CLOUD_IMAGE_SERIAL, GUEST_IMAGE_SERIAL, PV_SERIAL
from kvmops_lab.state import LabState

PV_DEVICE = f"/dev/disk/by-id/virtio-{PV_SERIAL}"
GUEST_IMAGE_DEVICE = f"/dev/disk/by-id/virtio-{GUEST_IMAGE_SERIAL}"
GUEST_IMAGE_FILE = "/var/lib/kvmops/images/guest.raw"
CLOUD_IMAGE_DEVICE = f"/dev/disk/by-id/virtio-{CLOUD_IMAGE_SERIAL}"
CLOUD_IMAGE_FILE = IN_LAB_FILE
IMAGES = ((GUEST_IMAGE_DEVICE, GUEST_IMAGE_FILE), (CLOUD_IMAGE_DEVICE, CLOUD_IMAGE_FILE))


def vg_plan(vgs: tuple[VG, ...], vg: str, device: str = PV_DEVICE) -> Plan:
    """A no-op when ``vg`` exists; else ``vgcreate VG DEVICE``."""
    plan = Plan(f"volume group {vg} of the lab")
    if any(v.name == vg for v in vgs):
        return plan.noop(f"VG {vg} exists already")
    return plan.add(f"create VG {vg} on the lab's PV disk", change("vgcreate", vg, device))


def image_plan(attached: bool, copied: bool, device: str = GUEST_IMAGE_DEVICE,
               target: str = GUEST_IMAGE_FILE) -> Plan:
    """``cp --sparse=always DEVICE /var/lib/kvmops/images/guest.raw`` unless done or absent."""
    name = target.rsplit("/", 1)[1]
    plan = Plan(f"the guest image {name} inside the lab")
    if not attached:
        return plan.noop(f"no disk for {name} attached to this lab")
    if copied:
        return plan.noop(f"{target} exists already")
    plan.add("folder for images", change("mkdir", "-p", target.rsplit("/", 1)[0]))
    return plan.add(f"copy the attached image to {target}",
                    change("cp", "--sparse=always", device, target))


def _exists(host: Host, flag: str, path: str) -> bool:
    return host.run(read("test", flag, path, ok=(0, 1))).returncode == 0


def provision(host: Host, plan: Plan, say: Phases) -> None:
    """Each step of ``plan`` (commands only) run on the lab host, in order; one line per step."""
    for step in plan.steps:
        if step.cmd is not None:
            host.run(step.cmd)
        elif step.effect is not None:
            raise TypeError(f"lab provisioning runs commands only, not {step.text()!r}")
        say(f"prepare: {step.reason}: {step.text()}")


def prepare_lab(state: LabState, say: Phases, paths: LabPaths | None = None) -> str:
    """VG, images, then the guests' domain type (``kvm`` when KVM works inside); returns it."""
    site = load_site(state.site)
    host = connect(site, apply=True)
    try:
        vgs = parse_vgs(host.run(vgs_cmd()).stdout)
        plan = vg_plan(vgs, site.vg)
        for device, target in IMAGES:
            plan.extend(image_plan(_exists(host, "-b", device), _exists(host, "-e", target), device, target))
        provision(host, plan, say)
        return decide_guest_domain_type(host, paths or LabPaths(Path(state.run_dir).parent), state.image_dir,
                                        state.accel, say)
    finally:
        host.close()
