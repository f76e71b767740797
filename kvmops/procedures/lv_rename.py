"""lv-rename (guide 4.2.4): rename a guest's LV and update every definition that names it.

``lvrename`` alone leaves the guest pointing at a disk that no longer exists. So, in one
procedure with every confirmation checked first:

1. ``lvrename VG OLD NEW`` (refused while the LV is in use: a running guest's disk, or open),
2. for each guest whose definition names ``/dev/VG/OLD``: libvirt's definition with the new
   source, defined again with its UUID (libvirt replaces a definition only then; MACs and
   addresses stay), and the kept ``<xml_dir>/<guest>.xml`` likewise (written from the new
   definition when there was none). Changing a guest's definition needs ``confirm`` = its name.

Both parts are planned again from fresh facts when they run; a re-run after a failure finds
the LV renamed and only updates what still names the old one.
"""

from __future__ import annotations

from dataclasses import replace

from kvmops import guards, names
from kvmops.errors import InvalidInput, SafetyError
from kvmops.executor import Phase, Procedure
from kvmops.guests import hostfile, lifecycle
from kvmops.guests.xml import disk_source, read_domain, with_disk_source
from kvmops.hostfacts import HostFacts, Wanted, lv_free
from kvmops.lvm import ops
from kvmops.plan import Call, Plan
from kvmops.procedures.base import Verdict, need
from kvmops.site import Site


def names_of(site: Site, old: str, new: str) -> tuple[str, str]:
    """Both names valid guest LV names (host LVs are never renamed), and different."""
    for lv in (old, new):
        names.lv_name(lv)
        guards.not_host_lv(lv, site.lv_prefix)
    if old == new:
        raise InvalidInput(f"the new name {new!r} is the old one: nothing to rename")
    return old, new


def guests_of(facts: HostFacts, old: str) -> tuple[str, ...]:
    """The guests whose definition names the LV (running or not)."""
    return facts.guests_with_disk(f"{facts.site.vg}/{old}")


def users(facts: HostFacts, old: str, new: str) -> tuple[str, ...]:
    """The guests to update: those naming the old LV (or, after a run cut short, the new one)."""
    return guests_of(facts, old) or guests_of(facts, new)


def wanted(facts: HostFacts, old: str, new: str) -> Wanted:
    """Besides LVM and the guests: the kept XML file of each guest to update."""
    return Wanted(files=tuple(hostfile.xml_path(facts.site, g) for g in users(facts, old, new)))


def check(facts: HostFacts, old: str, new: str) -> str:
    """The LV exists (or is renamed already), the new name is free, nobody uses the LV."""
    site = facts.site
    lv, done = facts.lvm.get(old), facts.lvm.get(new)
    if lv is None and done is not None:
        return f"{site.vg}/{old} is renamed to {new} already; the definitions are checked below"
    need(lv is not None, f"LV {site.vg}/{old} does not exist (see the inventory runbook)")
    assert lv is not None
    need(done is None, f"LV {site.vg}/{new} exists already: pick another name")
    lv_free(facts, lv, "rename")
    users = guests_of(facts, old)
    running = [g for g in users if (d := facts.domain(g)) is not None and d.active]
    need(not running, f"guest {', '.join(running)} is running: shut it down first (guest-lifecycle action=shutdown)")
    return (f"{lv.path} -> {site.vg}/{new}; definitions to update: {', '.join(users) or 'none'}"
            + (f"; its snapshots keep their names: {', '.join(s.name for s in facts.lvm.snapshots_of(old))}"
               if facts.lvm.snapshots_of(old) else ""))


def definition_plan(facts: HostFacts, guest: str, old: str, new: str) -> Plan:
    """Guest ``guest`` with ``/dev/VG/NEW`` instead of ``/dev/VG/OLD``: libvirt (same UUID) and
    the kept file; no-ops when both name the new LV already."""
    site = facts.site
    was, now = disk_source(site, old), disk_source(site, new)
    info = lifecycle.need_domain(facts, guest)
    plan = Plan(f"guest {guest}: its disk {was} becomes {now}")
    if info.active:
        raise SafetyError(f"guest {guest} is {info.state}: kvmops does not redefine a running guest; "
                           "shut it down first (guest-lifecycle action=shutdown); nothing was changed")
    defined = info.inactive_xml or info.xml
    new_xml = with_disk_source(defined, was, now)
    path = hostfile.xml_path(site, guest)
    kept = facts.file(path)
    if kept is None:
        plan.add(f"keep the new definition in {path} (there was none)", hostfile.write_cmd(path, new_xml),
                 target=guest)
    elif was in read_domain(kept).disk_sources:
        plan.add(f"{path}: the disk {now}", hostfile.write_cmd(path, with_disk_source(kept, was, now)), target=guest)
    else:
        plan.noop(f"{path} does not name {was}")
    if was in read_domain(defined).disk_sources:
        uuid = read_domain(defined).uuid
        plan.add(f"define guest {guest} again with its disk {now} (UUID {uuid} kept)",
                 Call("define", guest, f"virsh define {path}", xml=new_xml), target=guest)
    else:
        plan.noop(f"libvirt's definition of {guest} does not name {was}")
    return plan


def procedure(facts: HostFacts, old: str, new: str) -> Procedure:
    """Rename, then update each definition; previewed as if the LV were renamed already."""
    site = facts.site
    proc = Procedure(f"rename LV {site.vg}/{old} to {new}", facts=facts)
    proc.add(Phase(f"rename {site.vg}/{old}", lambda f: ops.rename(f, old, new)), ops.rename(facts, old, new))
    after = _renamed(facts, old, new)
    for guest in users(facts, old, new):
        proc.add(_update(site, guest, old, new), definition_plan(after, guest, old, new))
    return proc


def _update(site: Site, guest: str, old: str, new: str) -> Phase:
    return Phase(f"update guest {guest}", lambda f: definition_plan(f, guest, old, new),
                 Wanted(files=(hostfile.xml_path(site, guest),)))


def _renamed(facts: HostFacts, old: str, new: str) -> HostFacts:
    lv = facts.lvm.get(old)
    if lv is None:
        return facts
    lvs = tuple(replace(x, name=new) if x.name == old else x for x in facts.lvm.lvs)
    return replace(facts, lvm=replace(facts.lvm, lvs=lvs))


def uuids(facts: HostFacts, guests: tuple[str, ...]) -> dict[str, str | None]:
    """Each guest's UUID now (to check that the update kept it)."""
    return {g: read_domain(d.inactive_xml or d.xml).uuid if (d := facts.domain(g)) else None for g in guests}


def verify_wanted(site: Site, guests: tuple[str, ...]) -> Wanted:
    return Wanted(files=tuple(hostfile.xml_path(site, g) for g in guests))


def verify(facts: HostFacts, old: str, new: str, before: dict[str, str | None]) -> Verdict:
    """The LV has its new name; each guest's definition (libvirt and kept file) names it,
    with the UUID it had."""
    site = facts.site
    was, now = disk_source(site, old), disk_source(site, new)
    checks = [(facts.lvm.get(new) is not None and facts.lvm.get(old) is None,
               f"{site.vg}/{new} exists and {site.vg}/{old} does not")]
    for guest, uuid in before.items():
        info = facts.domain(guest)
        got = read_domain(info.inactive_xml or info.xml) if info else None
        kept = facts.file(hostfile.xml_path(site, guest))
        checks += [
            (got is not None and now in got.disk_sources and was not in got.disk_sources,
             f"guest {guest} is defined with the disk {now}"),
            (got is not None and got.uuid == uuid, f"guest {guest} kept its UUID {uuid}"),
            (kept is not None and now in read_domain(kept).disk_sources, f"its kept XML names {now}"),
        ]
    return Verdict.of(checks)
