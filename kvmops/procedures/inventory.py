"""inventory: the host's guests, guest LVs with their snapshots, and guest bridges (read only)."""

from __future__ import annotations

from kvmops.guests.inventory import Inventory
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.lvm import ops
from kvmops.net.drift import drift_report, render
from kvmops.procedures.base import Table
from kvmops.units import human


def wanted(bridges: bool) -> Wanted:
    """Besides LVM and the guests: the network, when the bridges are compared too."""
    return Wanted(net=bridges)


def lv_table(facts: HostFacts, inv: Inventory) -> Table:
    """Every guest LV (host LVs never), its snapshot origin and fill, the guest it belongs to,
    and what needs attention (:func:`ops.snapshot_state` other than ok)."""
    used = {d.lv.name: g.name for g in inv.guests for d in g.disks if d.lv}
    limit = facts.site.snapshot_extend_at
    rows: list[tuple[object, ...]] = []
    for lv in ops.list_guest_lvs(facts.site, facts.lvm):
        fill = f"{lv.data_percent:.2f}%" if lv.data_percent is not None else ""
        state = ops.snapshot_state(lv, limit)
        owner = used.get(lv.origin if lv.is_snapshot else lv.name, "(no guest)")
        rows.append((lv.path, human(lv.size), lv.origin or "", fill, owner, "" if state == ops.OK else state))
    return Table(rows, ("LV", "size", "snapshot of", "used", "guest", "attention"))


def vg_line(facts: HostFacts) -> str:
    return f"VG {facts.lvm.vg.name}: {human(facts.lvm.vg.free)} free of {human(facts.lvm.vg.size)}"


def bridges(facts: HostFacts, asked: bool) -> str:
    """The guest bridges compared with the site's networks (read with :func:`wanted`), or why not."""
    if not asked:
        return "skipped (bridges=False)"
    return render(drift_report(facts.site, facts.net))
