"""Retiring a guest's NoCloud seed once its boot is verified (guest-create's last phase, and
``kvmops guest seed-done NAME`` for a boot verified later).

The seed ISO holds password hashes and is read by cloud-init at the first boot only. So
after that boot: eject it from the running guest's drive (``virsh change-media --eject
--live``), drop it from libvirt's definition and from the kept XML (the drive stays, empty,
as in the guide's template), and remove the file. Each part is a no-op once done.
"""

from __future__ import annotations

from kvmops.executor import Procedure
from kvmops.guests import hostfile, lifecycle
from kvmops.guests.xml import ejected_drive, read_domain, without_cdrom_media
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.images import nocloud
from kvmops.plan import Call, Plan
from kvmops.procedures.base import Verdict, single
from kvmops.site import Site


def wanted(site: Site, guest: str) -> Wanted:
    return Wanted(files=(hostfile.xml_path(site, guest),), paths=(nocloud.seed_path(site, guest),))


def plan(facts: HostFacts, guest: str) -> Plan:
    """Eject the seed ISO from the running guest, drop it from the definition and the kept XML,
    remove the file (it holds password hashes). Each part a no-op once done."""
    site = facts.site
    info = lifecycle.need_domain(facts, guest)
    path = nocloud.seed_path(site, guest)
    out = Plan(f"retire the NoCloud seed of guest {guest} ({path})")
    out.notes.append("cloud-init reads the seed at the first boot: do this once the guest has booted with it")
    live = read_domain(info.xml)
    drive = next((d.target for d in live.disks if d.device == "cdrom" and d.source == path), None)
    device = ejected_drive(info.xml, path)
    if info.active and device is not None:
        out.add(f"eject {path} from drive {drive} of the running guest",
                 Call("eject", guest, f"virsh change-media {guest} {drive} --eject --live", xml=device,
                      device=drive or ""))
    defined = info.inactive_xml or info.xml
    if read_domain(defined).cdrom == path:
        new = without_cdrom_media(defined, path)
        out.add("drop it from the definition (the next boot finds an empty drive)",
                 Call("define", guest, f"virsh change-media {guest} {drive or 'sda'} --eject --config", xml=new))
    kept_path = hostfile.xml_path(site, guest)
    kept = facts.file(kept_path)
    if kept is not None and read_domain(kept).cdrom == path:
        out.add(f"drop it from the kept {kept_path}", hostfile.write_cmd(kept_path, without_cdrom_media(kept, path)))
    if facts.exists(path):
        out.add(f"remove {path} (it holds password hashes)", nocloud.remove_cmd(path))
    if not out.steps:
        out.noop(f"guest {guest} has no seed left: none in its definition or kept XML, no {path}")
    return out


def procedure(facts: HostFacts, guest: str) -> Procedure:
    return single(facts, f"retire the seed of guest {guest}", lambda f: plan(f, guest),
                  wanted(facts.site, guest))


def verify(facts: HostFacts, guest: str) -> Verdict:
    site = facts.site
    path = nocloud.seed_path(site, guest)
    info = lifecycle.need_domain(facts, guest)
    kept = facts.file(hostfile.xml_path(site, guest))
    return Verdict.of([
        (read_domain(info.xml).cdrom != path, f"the running guest's drive no longer holds {path}"),
        (read_domain(info.inactive_xml or info.xml).cdrom != path, "its definition has no seed"),
        (kept is None or read_domain(kept).cdrom != path, "the kept XML has no seed"),
        (not facts.exists(path), f"{path} is removed"),
    ])
