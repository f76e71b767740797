"""guest-remove: undefine a guest (its XML kept) and, when asked, remove its disk LVs.

Every destructive target (the guest, each disk LV and each of its snapshots) is confirmed
before the first change: the removal of the disks is planned up front from the facts as they
will be once the guest is undefined, and planned again from fresh facts when it runs.
"""

from __future__ import annotations

from dataclasses import replace

from kvmops.executor import Phase, Procedure
from kvmops.guests import hostfile, lifecycle
from kvmops.guests.inventory import inventory_of
from kvmops.guests.xml import read_domain
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.lvm import ops
from kvmops.lvm.facts import LV
from kvmops.lvm.paths import lv_path
from kvmops.plan import Plan
from kvmops.procedures.base import Verdict, need
from kvmops.site import Site


def wanted(site: Site, guest: str) -> Wanted:
    """Besides LVM and the guests: the kept definition (also as retired by an earlier run)."""
    path = hostfile.xml_path(site, guest)
    return lifecycle.undefine_wanted(site, guest) | Wanted(files=(path, path + hostfile.UNDEFINED_SUFFIX))


def kept_definition(facts: HostFacts, guest: str) -> str | None:
    """The guest's kept XML: ``<xml_dir>/<guest>.xml``, or as an earlier removal retired it."""
    path = hostfile.xml_path(facts.site, guest)
    return facts.file(path) or facts.file(path + hostfile.UNDEFINED_SUFFIX)


def disks_to_remove(facts: HostFacts, guest: str) -> tuple[LV, ...]:
    """The guest's disk LVs in the site's VG, each preceded by its snapshots (removed first).

    A guest undefined already (an earlier run that failed after ``virsh undefine``) is known by
    its kept definition; its disks still there are removed.
    """
    row = inventory_of(facts).guest(guest)
    if row is not None:
        disks = [d.lv for d in row.disks if d.lv is not None]
    else:
        kept = kept_definition(facts, guest)
        need(kept is not None, f"guest {guest} is not defined on {facts.site.name} and has no kept definition "
                               "(see the inventory runbook)")
        assert kept is not None
        paths = (lv_path(s) for s in read_domain(kept).disk_sources)
        disks = [lv for p in paths if p and (lv := facts.lvm.get(p.split("/", 1)[1])) and lv.path == p]
    return tuple([s for d in disks for s in facts.lvm.snapshots_of(d.name)] + disks)


def check(facts: HostFacts, guest: str, remove_disks: bool) -> str:
    info = facts.domain(guest)
    if info is None:
        if kept_definition(facts, guest) is None:
            lifecycle.need_domain(facts, guest)  # NotFound: names the guests there are
        state = "undefined already (an earlier run), known by its kept definition"
    else:
        need(not info.active, f"guest {guest} is {info.state}: shut it down first (guest-lifecycle action=shutdown)")
        state = info.state
    order = disks_to_remove(facts, guest) if remove_disks else ()
    return f"guest {guest}: {state}; disks to remove: {', '.join(lv.path for lv in order) or 'none'}"


def disk_targets(facts: HostFacts, guest: str) -> str:
    """What ``confirm_disks`` must say: every LV to remove, comma-separated."""
    return ",".join(lv.path for lv in disks_to_remove(facts, guest))


def _removals(facts: HostFacts, names: tuple[str, ...]) -> Plan:
    plan = Plan(f"remove the disk LVs {', '.join(names)}")
    for name in names:
        plan.extend(ops.remove(facts, name))
        facts = replace(facts, lvm=replace(facts.lvm, lvs=tuple(x for x in facts.lvm.lvs if x.name != name)))
    return plan


def procedure(facts: HostFacts, guest: str, remove_disks: bool) -> Procedure:
    """Undefine, then (optionally) remove the disks; previewed as if the guest were gone."""
    proc = Procedure(f"remove guest {guest}", facts=facts)
    undefine = Phase(f"undefine guest {guest}", lambda f: lifecycle.undefine(f, guest), wanted(facts.site, guest))
    proc.add(undefine, undefine.plan(facts))
    if remove_disks:
        names = tuple(lv.name for lv in disks_to_remove(facts, guest))
        after = replace(facts, domains=tuple(d for d in facts.domains if d.name != guest))
        preview = _removals(after, names)
        if names:
            preview.notes.append(f"to remove the disks set confirm_disks={disk_targets(facts, guest)!r}")
        proc.add(Phase("remove the disk LVs", lambda f: _removals(f, names)), preview)
    return proc


def verify(facts: HostFacts, before: HostFacts, guest: str, remove_disks: bool) -> Verdict:
    """The guest is undefined, its kept XML (if it had one ``before``) renamed, the disks it
    had ``before`` gone (with ``remove_disks``)."""
    removed = tuple(lv.name for lv in disks_to_remove(before, guest)) if remove_disks else ()
    had_xml = before.exists(hostfile.xml_path(before.site, guest))
    kept = hostfile.xml_path(facts.site, guest) + hostfile.UNDEFINED_SUFFIX
    checks = [(facts.domain(guest) is None, f"guest {guest} is no longer defined in libvirt")]
    if had_xml:
        checks.append((facts.exists(kept), f"its definition is kept in {kept}"))
    checks += [(facts.lvm.get(name) is None, f"{facts.site.vg}/{name} is gone") for name in removed]
    return Verdict.of(checks)


def verify_wanted(site: Site, guest: str) -> Wanted:
    return Wanted(paths=(hostfile.xml_path(site, guest) + hostfile.UNDEFINED_SUFFIX,))
