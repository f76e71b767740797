"""A page per host and per guest, from the latest inventory in the journal (pure: data in,
markdown out).

The ``inventory`` runbook keeps its inventory as data in its executed notebook
(:mod:`kvmops.runbook.inventory_data`). Per host, the newest successful inventory run in the
journal is used; a host the journal has no inventory of can still get pages from the build's
own plan-mode inventory run (the demo site). A host page lists the VG, the guests, the guest
LVs with their snapshots' fill %, the bridges and the last runs on that host; a guest page its
state, disks, snapshots, bridges, its last verified restore (:mod:`kvmops_manual.restores`:
the host's guest table has it as a column, ages counted from the build's time) and the last
runs that touched it (by the runs' ``guest`` / ``guests`` parameter, or an ``lv`` /
``snapshot`` / ``origin`` parameter naming one of its LVs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kvmops.runbook.inventory_data import inventory_in
from kvmops.runbook.journal import RunRecord
from kvmops.units import human
from kvmops_manual import notebooks, restores
from kvmops_manual.journal import host_name
from kvmops_manual.pages import table

HOSTS = "journal/hosts"  # under docs/
INVENTORY = "inventory"
LAST_RUNS = 10
LV_PARAMS = ("lv", "snapshot", "origin")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class HostInventory:
    """The inventory data of one host and where it came from."""

    data: dict[str, Any]
    source: str  # one line: which run, when, which mode
    run_id: str = ""

    @property
    def host(self) -> str:
        return str(self.data["host"])

    def guest(self, name: str) -> dict[str, Any] | None:
        return next((g for g in self.data["guests"] if g["name"] == name), None)

    def lvs_of(self, guest: str) -> set[str]:
        """The LV names (disks and their snapshots) of a guest."""
        return {lv["name"] for lv in self.data["lvs"] if lv["guest"] == guest}


def slug(name: str) -> str:
    return _SAFE.sub("-", name).strip("-") or "unnamed"


def host_page(host: str) -> str:
    return f"{HOSTS}/{slug(host)}/index.md"


def guest_page(host: str, guest: str) -> str:
    return f"{HOSTS}/{slug(host)}/{slug(guest)}.md"


def from_journal(records: list[RunRecord]) -> dict[str, HostInventory]:
    """Per host, its newest successful inventory run that holds inventory data."""
    out: dict[str, HostInventory] = {}
    for rec in _newest(records):
        if rec.runbook != INVENTORY or not rec.ok or not Path(rec.notebook).is_file():
            continue
        data = inventory_in(notebooks.load(Path(rec.notebook)))
        if data is not None and data["host"] not in out:
            mode = "applied" if rec.apply else "plan mode, read-only"
            out[data["host"]] = HostInventory(data, f"Inventory run `{rec.id}` ({mode}) by {rec.user}, "
                                                    f"facts read at {data['read_at']}.", rec.id)
    return out


def from_published(nb_path: Path, provenance: str) -> HostInventory | None:
    """The inventory data of the build's own inventory run (None when it holds none)."""
    if not nb_path.is_file():
        return None
    data = inventory_in(notebooks.load(nb_path))
    return None if data is None else HostInventory(data, f"{provenance} Facts read at {data['read_at']}.")


def touches(rec: RunRecord, inv: HostInventory, guest: str) -> bool:
    """The run was on this host and named the guest or one of its LVs."""
    if host_name(rec) != inv.host:
        return False
    p = rec.params
    if p.get("guest") == guest or guest in [g.strip() for g in str(p.get("guests", "")).split(",")]:
        return True
    return bool(inv.lvs_of(guest) & {str(p.get(k)) for k in LV_PARAMS if p.get(k)})


def guests_of(rec: RunRecord, inventories: dict[str, HostInventory]) -> list[str]:
    """The guests a run touched (by its parameters; LVs mapped through the host's inventory)."""
    found = [str(rec.params["guest"])] if rec.params.get("guest") else []
    found += [g.strip() for g in str(rec.params.get("guests", "")).split(",") if g.strip()]
    inv = inventories.get(host_name(rec))
    if inv is not None:
        found += [g["name"] for g in inv.data["guests"] if touches(rec, inv, g["name"])]
    return list(dict.fromkeys(found))


def _fill(value: float | None, limit: float) -> str:
    if value is None:
        return ""
    return f"**{value:.1f} %** (filling up)" if value >= limit else f"{value:.1f} %"


def _runs(records: list[RunRecord], up: str) -> str:
    if not records:
        return "No runs in the journal."
    rows = [(r.started[:16].replace("T", " "), f"`{r.runbook}`", "apply" if r.apply else "plan",
             "ok" if r.ok else f"**{r.status}**" + (f" at {r.failed_step}" if r.failed_step else ""), f"`{r.id}`")
            for r in records[:LAST_RUNS]]
    older = len(records) - LAST_RUNS
    more = f"\n\n{older} older runs: see the [journal]({up}index.md)." if older > 0 else ""
    return table(("Started (UTC)", "Runbook", "Mode", "Outcome", "Run"), rows) + more


def _bridge_rows(bridges: list[dict[str, Any]] | None, only: set[str] | None = None) -> str:
    if bridges is None:
        return "Not read by this inventory run (`bridges=False`)."
    rows = [(f"`{b['bridge']}`", b["vlan"] if b["vlan"] is not None else "not in the site",
             "ok" if b["ok"] else "**drift**", "<br>".join(b["findings"]) or "-")
            for b in bridges if only is None or b["bridge"] in only]
    return _table(("Bridge", "VLAN", "Status", "Findings"), rows)


def _table(head: tuple[str, ...], rows: Sequence[Sequence[object]]) -> str:
    return table(head, rows) if rows else "None."


def render_host(inv: HostInventory, records: list[RunRecord], now: datetime,
                proven: Mapping[str, restores.LastRestore]) -> str:
    """The markdown of a host's page (``proven``: each guest's last verified restore)."""
    d, vg = inv.data, inv.data["vg"]
    guests = [(f"[{g['name']}]({slug(g['name'])}.md)", g["state"], "yes" if g["autostart"] else "no", g["vcpus"],
               human(g["memory"]), ", ".join(f"`{b}`" for b in g["bridges"]) or "-",
               "<br>".join(f"`{k['lv'] or k['source']}`" for k in g["disks"]) or "-",
               restores.cell(restores.of(g["name"], proven), now)) for g in d["guests"]]
    lvs = [(f"`{lv['path']}`", human(lv["size"]), f"`{lv['origin']}`" if lv["origin"] else "",
            _fill(lv["fill"], d["snapshot_extend_at"]), lv["guest"] or "(no guest)",
            "INVALID" if lv["invalid"] else "") for lv in d["lvs"]]
    on_host = [r for r in _newest(records) if host_name(r) == inv.host]
    return "\n\n".join([
        f"# Host {inv.host}", f'!!! info "From the journal"\n    {inv.source}',
        f"**VG `{vg['name']}`**: {human(vg['free'])} free of {human(vg['size'])}.",
        "## Guests", _table(("Guest", "State", "Autostart", "vCPUs", "Memory", "Bridges", "Disks",
                                 "Last verified restore"), guests),
        "## Guest LVs and snapshots", _table(("LV", "Size", "Snapshot of", "Fill", "Guest", ""), lvs),
        "## Bridges", _bridge_rows(d["bridges"]),
        f"## Last runs on {inv.host}", _runs(on_host, "../../"),
    ]) + "\n"


def render_guest(inv: HostInventory, name: str, records: list[RunRecord], now: datetime,
                 proven: Mapping[str, restores.LastRestore]) -> str:
    """The markdown of a guest's page (``proven``: each guest's last verified restore)."""
    g = inv.guest(name)
    assert g is not None
    limit = inv.data["snapshot_extend_at"]
    facts = [("Host", f"[{inv.host}](index.md)"), ("State", g["state"]),
             ("Autostart", "yes" if g["autostart"] else "no"), ("vCPUs", g["vcpus"]), ("Memory", human(g["memory"]))]
    disks = [(f"`{k['target']}`", f"`{k['lv'] or k['source']}`", human(k["size"]) if k["size"] else "",
              "**MISSING**" if k["missing"] else "") for k in g["disks"]]
    snaps = [(f"`{s['path']}`", human(s["size"]), _fill(s["fill"], limit),
              "INVALID (overflowed)" if s["invalid"] else "") for k in g["disks"] for s in k["snapshots"]]
    runs = [r for r in _newest(records) if touches(r, inv, name)]
    return "\n\n".join([
        f"# Guest {name} on {inv.host}", f'!!! info "From the journal"\n    {inv.source}',
        table(("Fact", "Value"), facts),
        "## Disks", _table(("Target", "Disk", "Size", ""), disks),
        "## Snapshots", _table(("Snapshot", "Size", "Fill", ""), snaps),
        "## Bridges", _bridge_rows(inv.data["bridges"], set(g["bridges"])) if g["bridges"] else "No bridges.",
        "## Last verified restore", restores.guest_section(restores.of(name, proven), now),
        f"## Last runs touching {name}", _runs(runs, "../../"),
        f"All runs of {name}: [the journal, filtered](../../index.md?guest={name}).",
    ]) + "\n"


def _newest(records: list[RunRecord]) -> list[RunRecord]:
    return sorted(records, key=lambda r: (r.started, r.id), reverse=True)


def pages(inventories: dict[str, HostInventory], records: list[RunRecord], now: datetime,
          stamps: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every page: its path under docs/ -> markdown. ``now``: the build's time (the ages of the
    verified restores); ``stamps``: the backup each verification run proved, by run id."""
    proven = restores.last_restores(records, stamps)
    out: dict[str, str] = {}
    for inv in inventories.values():
        out[host_page(inv.host)] = render_host(inv, records, now, proven)
        for g in inv.data["guests"]:
            out[guest_page(inv.host, g["name"])] = render_guest(inv, g["name"], records, now, proven)
    return out


def guests_by_host(inventories: Mapping[str, HostInventory]) -> dict[str, list[str]]:
    """Each host's guests, by the newest inventory of each host."""
    return {inv.host: [str(g["name"]) for g in inv.data["guests"]] for inv in inventories.values()}


def nav(inventories: dict[str, HostInventory]) -> list[Any]:
    """The navigation entries: a section per host (its page first), its guests inside."""
    return [{inv.host: [host_page(inv.host), *({g["name"]: guest_page(inv.host, g["name"])}
                                               for g in inv.data["guests"])]}
            for inv in sorted(inventories.values(), key=lambda i: i.host)]

