"""The host inventory as data, kept in the executed notebook of the ``inventory`` runbook.

The runbook's last cell calls :func:`show_inventory`: a display output of MIME type
:data:`MIME` (JSON: the host, its VG, every guest with its disks and their snapshots, every
guest LV with its fill % and guest, the guest bridges) beside a one-line ``text/plain``. The
manual (``kvmops_manual.hosts``) reads it back with :func:`inventory_in` from the latest
inventory run in the journal and makes a page per host and per guest. No secrets: names,
sizes, states and bridges only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kvmops.guests.inventory import GuestDisk, GuestRow, inventory_of
from kvmops.hostfacts import FactsIncomplete
from kvmops.lvm.facts import LV
from kvmops.lvm.ops import list_guest_lvs

if TYPE_CHECKING:
    from kvmops.hostfacts import HostFacts

MIME = "application/vnd.kvmops.inventory+json"
VERSION = 1


def _fill(lv: LV) -> float | None:
    return round(lv.data_percent, 2) if lv.data_percent is not None else None


def _snapshot(lv: LV) -> dict[str, Any]:
    return {"name": lv.name, "path": lv.path, "size": lv.size, "fill": _fill(lv), "invalid": lv.invalid}


def _disk(d: GuestDisk) -> dict[str, Any]:
    return {"target": d.target, "source": d.source, "lv": d.lv.path if d.lv else None,
            "size": d.lv.size if d.lv else None, "missing": d.missing,
            "snapshots": [_snapshot(s) for s in d.snapshots]}


def _guest(g: GuestRow) -> dict[str, Any]:
    return {"name": g.name, "state": g.state, "autostart": g.autostart, "vcpus": g.vcpus,
            "memory": g.memory_kib * 1024, "bridges": list(g.bridges), "disks": [_disk(d) for d in g.disks]}


def _bridges(facts: HostFacts) -> list[dict[str, Any]] | None:
    from kvmops.net.drift import drift_report

    try:
        net = facts.net
    except FactsIncomplete:
        return None  # not read (the runbook's bridges=False)
    report = drift_report(facts.site, net)
    return [{"bridge": s.bridge, "vlan": s.network.vlan if s.network else None, "ok": s.ok,
             "ports": list(s.ports), "findings": [f"{f.severity}: {f.problem}" for f in s.findings]}
            for s in report.statuses]


def inventory_data(facts: HostFacts) -> dict[str, Any]:
    """The inventory of the facts as JSON-ready data (sizes in bytes, fill in %)."""
    inv = inventory_of(facts)
    site = facts.site
    owner = {d.lv.name: g.name for g in inv.guests for d in g.disks if d.lv}
    lvs = [{"name": lv.name, "path": lv.path, "size": lv.size, "origin": lv.origin or None,
            "fill": _fill(lv), "invalid": lv.invalid,
            "guest": owner.get(lv.origin if lv.is_snapshot else lv.name),
            "filling_up": (lv.data_percent or 0) >= site.snapshot_extend_at}
           for lv in list_guest_lvs(site, facts.lvm) if not lv.hidden]
    return {
        "version": VERSION, "host": site.name, "read_at": facts.read_at,
        "snapshot_extend_at": site.snapshot_extend_at,
        "vg": {"name": inv.vg.name, "size": inv.vg.size, "free": inv.vg.free},
        "guests": [_guest(g) for g in inv.guests], "lvs": lvs, "bridges": _bridges(facts),
    }


def summary(data: dict[str, Any]) -> str:
    return (f"inventory of {data['host']} kept for the manual: {len(data['guests'])} guests, "
            f"{len(data['lvs'])} guest LVs" + ("" if data["bridges"] is None else f", {len(data['bridges'])} bridges"))


def show_inventory(facts: HostFacts) -> dict[str, Any]:
    """Show the inventory as data in the notebook (a line of text elsewhere); returns it."""
    data = inventory_data(facts)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        print(summary(data))
        return data
    if get_ipython() is None:
        print(summary(data))
    else:
        display({MIME: data, "text/plain": summary(data)}, raw=True)  # type: ignore[no-untyped-call]
    return data


def inventory_in(nb: Any) -> dict[str, Any] | None:
    """The inventory data an executed notebook (nbformat dict) holds, or None."""
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            data = out.get("data", {}).get(MIME)
            if isinstance(data, dict) and data.get("version") == VERSION:
                return data
    return None
