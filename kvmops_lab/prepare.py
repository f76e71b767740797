"""First boot of a lab, through kvmops' own SSH runner; every step is idempotent.

- VG ``rl_build``: ``vgcreate rl_build /dev/disk/by-id/virtio-kvmops-pv`` when ``vgs`` lacks
  it (vgcreate initialises the blank disk as a PV itself).
- The guest cloud image, when attached as a read-only disk: copied to
  ``/var/lib/kvmops/images/guest.raw`` (sparse) so runbooks can ``dd`` it like the guide does.
"""

from __future__ import annotations

from kvmops.cmd import change, read
from kvmops.executor import Executor
from kvmops.host import Host, connect
from kvmops.lvm.facts import VG, parse_vgs, vgs_cmd
from kvmops.plan import Plan
from kvmops.site import load_site
from kvmops_lab.progress import Phases
from kvmops_lab.qemu import GUEST_IMAGE_SERIAL, PV_SERIAL
from kvmops_lab.state import LabState

PV_DEVICE = f"/dev/disk/by-id/virtio-{PV_SERIAL}"
GUEST_IMAGE_DEVICE = f"/dev/disk/by-id/virtio-{GUEST_IMAGE_SERIAL}"
GUEST_IMAGE_FILE = "/var/lib/kvmops/images/guest.raw"


def vg_plan(vgs: tuple[VG, ...], vg: str, device: str = PV_DEVICE) -> Plan:
    """A no-op when ``vg`` exists; else ``vgcreate VG DEVICE``."""
    plan = Plan(f"volume group {vg} of the lab")
    if any(v.name == vg for v in vgs):
        return plan.noop(f"VG {vg} exists already")
    return plan.add(f"create VG {vg} on the lab's PV disk", change("vgcreate", vg, device))


def image_plan(attached: bool, copied: bool) -> Plan:
    """``cp --sparse=always DEVICE /var/lib/kvmops/images/guest.raw`` unless done or absent."""
    plan = Plan("the guest cloud image inside the lab")
    if not attached:
        return plan.noop("no guest image disk attached to this lab")
    if copied:
        return plan.noop(f"{GUEST_IMAGE_FILE} exists already")
    plan.add("folder for images", change("mkdir", "-p", GUEST_IMAGE_FILE.rsplit("/", 1)[0]))
    return plan.add(f"copy the attached guest image to {GUEST_IMAGE_FILE}",
                    change("cp", "--sparse=always", GUEST_IMAGE_DEVICE, GUEST_IMAGE_FILE))


def _exists(host: Host, flag: str, path: str) -> bool:
    return host.run(read("test", flag, path, ok=(0, 1))).returncode == 0


def prepare_lab(state: LabState, say: Phases) -> None:
    site = load_site(state.site)
    host = connect(site, apply=True)
    try:
        vgs = parse_vgs(host.run(vgs_cmd()).stdout)
        plan = vg_plan(vgs, site.vg)
        plan.extend(image_plan(_exists(host, "-b", GUEST_IMAGE_DEVICE), _exists(host, "-e", GUEST_IMAGE_FILE)))
        for line in Executor(host, lambda m: say(f"prepare: {m}")).execute(plan):
            say(f"prepare: {line}")
    finally:
        host.close()
