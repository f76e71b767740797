"""The host inventory: every guest with its state, resources, disks and their snapshots.

Built from the host's facts (:mod:`kvmops.facts`: one libvirt listing and one LVM report, no
per-guest commands). Which disks are in use is a question for the facts themselves
(:meth:`kvmops.hostfacts.HostFacts.lv_in_use`), which the storage guards ask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kvmops.guests.domain import DomainInfo
from kvmops.guests.xml import read_domain
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.paths import lv_path
from kvmops.lvm.state import LvmState
from kvmops.site import Site
from kvmops.units import human

if TYPE_CHECKING:
    from kvmops.hostfacts import HostFacts


@dataclass(frozen=True)
class GuestDisk:
    """A hard disk of a guest: target, source, and its LV (None: missing or not an LV)."""

    target: str
    source: str
    path: str | None
    lv: LV | None
    snapshots: tuple[LV, ...] = ()
    in_site_vg: bool = False

    @property
    def missing(self) -> bool:
        """An LV path of the site's VG that LVM does not know."""
        return self.in_site_vg and self.lv is None


@dataclass(frozen=True)
class GuestRow:
    name: str
    state: str
    active: bool
    autostart: bool
    vcpus: int
    memory_kib: int
    bridges: tuple[str, ...]
    disks: tuple[GuestDisk, ...]
    cdrom: str | None


@dataclass(frozen=True)
class Inventory:
    """Guests, the VG, LVs that no guest uses, and guests whose disk LV is missing."""

    vg: VG
    guests: tuple[GuestRow, ...]
    unused_lvs: tuple[LV, ...]

    @property
    def missing_disks(self) -> tuple[tuple[str, str], ...]:
        """(guest, VG/LV) for every disk LV a guest names but LVM does not have."""
        return tuple((g.name, d.path) for g in self.guests for d in g.disks if d.missing and d.path)

    def guest(self, name: str) -> GuestRow | None:
        return next((g for g in self.guests if g.name == name), None)


def _disk(site: Site, lvm: LvmState, target: str, source: str) -> GuestDisk:
    path = lv_path(source)
    if path is None or path.split("/")[0] != site.vg:
        return GuestDisk(target, source, path, None)
    lv = lvm.get(path.split("/", 1)[1])
    snaps = lvm.snapshots_of(lv.name) if lv else ()
    return GuestDisk(target, source, path, lv, snaps, in_site_vg=True)


def _row(site: Site, lvm: LvmState, dom: DomainInfo) -> GuestRow:
    facts = read_domain(dom.xml)
    disks = tuple(
        _disk(site, lvm, d.target, d.source) for d in facts.disks if d.device == "disk" and d.source
    )
    return GuestRow(dom.name, dom.state, dom.active, dom.autostart, facts.vcpus, facts.memory_kib,
                    facts.bridges, disks, facts.cdrom)


def build_inventory(site: Site, domains: Iterable[DomainInfo], lvm: LvmState) -> Inventory:
    """Join the libvirt listing with the LVM report (pure)."""
    rows = tuple(_row(site, lvm, d) for d in sorted(domains, key=lambda d: d.name))
    used = {d.lv.name for g in rows for d in g.disks if d.lv}
    unused = tuple(
        lv for lv in sorted(lvm.guest_lvs(site.lv_prefix), key=lambda lv: lv.name)
        if lv.name not in used and not (lv.is_snapshot and lv.origin in used) and not lv.hidden
    )
    return Inventory(lvm.vg, rows, unused)


def inventory_of(facts: HostFacts) -> Inventory:
    """The inventory of the host's facts."""
    return build_inventory(facts.site, facts.domains, facts.lvm)


# -- table -----------------------------------------------------------------------------------


def _fill(lv: LV) -> str:
    return f"{lv.data_percent:.1f}%" if lv.data_percent is not None else "?"


def _disk_text(d: GuestDisk) -> list[str]:
    if d.lv is None:
        return [f"{d.target} {d.source}" + ("  MISSING" if d.missing else "")]
    lines = [f"{d.target} {d.lv.path} {human(d.lv.size)}"]
    lines += [f"  snapshot {s.name} {human(s.size)} {_fill(s)} full" for s in d.snapshots]
    return lines


def render_table(inv: Inventory) -> str:
    """The inventory as a plain-text table plus the flags and the VG's free space."""
    rows = [("GUEST", "STATE", "AUTOSTART", "VCPUS", "MEMORY", "BRIDGES", "DISKS")]
    for g in inv.guests:
        disks = [ln for d in g.disks for ln in _disk_text(d)] or ["-"]
        first = (g.name, g.state, "yes" if g.autostart else "no", str(g.vcpus),
                 human(g.memory_kib * 1024), ",".join(g.bridges) or "-", disks[0])
        rows.append(first)
        rows += [("", "", "", "", "", "", more) for more in disks[1:]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for guest, path in inv.missing_disks:
        lines.append(f"! guest {guest}: disk LV {path} is MISSING")
    for lv in inv.unused_lvs:
        lines.append(f"! LV {lv.path} ({human(lv.size)}) is used by no guest")
    lines.append(f"VG {inv.vg.name}: {human(inv.vg.free)} free of {human(inv.vg.size)}")
    return "\n".join(lines)
