"""What each host of a fleet runs and has room for, per host and in total, and which hosts fit
a new guest (pure: from the hosts' facts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kvmops.fleet.reading import HostReading
from kvmops.guests.inventory import inventory_of
from kvmops.lvm.ops import fill_reached, snapshots
from kvmops.units import human

KIB = 1024


@dataclass(frozen=True)
class Room:
    """One host: guests, VG space, memory and vCPUs committed against what it has.

    Committed: the guests that run, or will run after the host's next boot (autostart).
    """

    name: str
    error: str = ""
    guests: int = 0
    running: int = 0
    vg: str = ""
    vg_free: int = 0
    vg_size: int = 0
    memory: int = 0
    memory_committed: int = 0
    cpus: int = 0
    vcpus_committed: int = 0
    filling: tuple[tuple[str, float], ...] = ()
    bridges: tuple[str, ...] | None = None  # None: not read
    networks: tuple[tuple[int, str], ...] = ()  # the site's VLANs and their bridges

    @property
    def reachable(self) -> bool:
        return not self.error


def room_of(reading: HostReading) -> Room:
    """A host's room from its facts (a host without facts keeps its error)."""
    f = reading.facts
    if f is None:
        return Room(reading.host.name, error=reading.error or "no facts")
    inv = inventory_of(f)
    committed = [g for g in inv.guests if g.active or g.autostart]
    limit = f.site.snapshot_extend_at
    filling = tuple((s.path, s.data_percent or 0.0) for s in snapshots(f.site, f.lvm) if fill_reached(s, limit))
    bridges = f.net.bridges() if f.net_facts is not None else None
    return Room(reading.host.name, "", len(inv.guests), sum(g.active for g in inv.guests), f.lvm.vg.name,
                f.lvm.vg.free, f.lvm.vg.size, f.limits.memory_kib * KIB,
                sum(g.memory_kib for g in committed) * KIB, f.limits.cpus, sum(g.vcpus for g in committed),
                filling, bridges, tuple((n.vlan, n.bridge) for n in f.site.networks))


def render(rooms: Sequence[Room]) -> str:
    """A table per host and a total line; unreachable hosts are listed with their error."""
    head = ("HOST", "GUESTS", "RUNNING", "VG FREE", "MEMORY COMMITTED", "VCPUS COMMITTED", "SNAPSHOTS FILLING UP")
    rows = [head]
    for r in rooms:
        if not r.reachable:
            rows.append((r.name, "-", "-", "-", "-", "-", f"NOT READ: {r.error}"))
            continue
        rows.append((r.name, str(r.guests), str(r.running), f"{human(r.vg_free)} of {human(r.vg_size)}",
                     f"{human(r.memory_committed)} of {human(r.memory)}", f"{r.vcpus_committed} of {r.cpus}",
                     ", ".join(f"{p} {pct:.0f}%" for p, pct in r.filling) or "-"))
    ok = [r for r in rooms if r.reachable]
    rows.append(("TOTAL", str(sum(r.guests for r in ok)), str(sum(r.running for r in ok)),
                 f"{human(sum(r.vg_free for r in ok))} of {human(sum(r.vg_size for r in ok))}",
                 f"{human(sum(r.memory_committed for r in ok))} of {human(sum(r.memory for r in ok))}",
                 f"{sum(r.vcpus_committed for r in ok)} of {sum(r.cpus for r in ok)}",
                 f"{sum(len(r.filling) for r in ok)}; {len(rooms) - len(ok)} host(s) not read"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


@dataclass(frozen=True)
class Fit:
    """Whether a host fits a new guest, with the room left and what does not fit."""

    name: str
    fits: bool
    reasons: tuple[str, ...]
    memory_left: int = 0
    disk_left: int = 0


def fit(room: Room, memory: int, vcpus: int, disk: int, vlans: Sequence[int] = (), *,
        reserve: int = 2 << 30, overcommit: float = 4.0) -> Fit:
    """Does a guest of ``memory`` bytes, ``vcpus`` and a ``disk`` LV fit on this host?

    Memory: what is not committed, less ``reserve`` for the host itself (no overcommit);
    vCPUs: up to ``overcommit`` per host CPU; disk: the VG's free space; each VLAN a network of
    the host's site whose bridge exists there (when the bridges were read).
    """
    if not room.reachable:
        return Fit(room.name, False, (f"not read: {room.error}",))
    mem_left = room.memory - reserve - room.memory_committed - memory
    disk_left = room.vg_free - disk
    why = []
    if mem_left < 0:
        why.append(f"memory: {human(room.memory - reserve - room.memory_committed)} left, {human(memory)} needed")
    if room.vcpus_committed + vcpus > room.cpus * overcommit:
        why.append(f"vCPUs: {room.vcpus_committed} of {room.cpus} CPUs committed, overcommit limit {overcommit:g}")
    if disk_left < 0:
        why.append(f"disk: VG {room.vg} has {human(room.vg_free)} free, {human(disk)} needed")
    why += _vlan_problems(room, vlans)
    return Fit(room.name, not why, tuple(why), mem_left, disk_left)


def _vlan_problems(room: Room, vlans: Sequence[int]) -> list[str]:
    nets = dict(room.networks)
    out = []
    for vlan in vlans:
        if vlan not in nets:
            out.append(f"VLAN {vlan} is not a network of its site")
        elif room.bridges is not None and nets[vlan] not in room.bridges:
            out.append(f"the bridge {nets[vlan]} of VLAN {vlan} does not exist there (host-network)")
    return out


def ranked(fits: Sequence[Fit]) -> list[Fit]:
    """Hosts that fit first, most memory left first (then disk); the others after, by name."""
    return sorted(fits, key=lambda f: (not f.fits, -f.memory_left, -f.disk_left, f.name))
