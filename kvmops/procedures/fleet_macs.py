"""The MACs of a fleet's guests, for a new guest's MACs to avoid (issue 24): every host of the
fleet read in parallel (:func:`kvmops.facts.fleet.read_fleet`), a host that does not answer
refused, the host itself left out (its own facts count anyway)."""

from __future__ import annotations

from collections.abc import Sequence

from kvmops.fleet.reading import HostReading
from kvmops.plan import Progress
from kvmops.procedures.base import PreconditionFailed
from kvmops.site import Site


def fleet_macs(readings: Sequence[HostReading], here: Site) -> frozenset[str]:
    """Every MAC of the guests of the fleet's hosts other than ``here`` (one reading each). A
    host that did not answer refuses: its guests' MACs cannot be avoided unread."""
    failed = [f"{r.host.name} ({r.error})" for r in readings if r.facts is None]
    if failed:
        raise PreconditionFailed(f"fleet: {', '.join(failed)} did not answer: the new MACs cannot be checked against "
                                 "its guests; retry, or leave that host out of fleet")
    return frozenset(m for r in readings if r.facts is not None and r.host.site.name != here.name
                     for m in r.facts.macs_taken())


def read_fleet_macs(sources: str, here: Site, progress: Progress | None = None) -> frozenset[str]:
    """:func:`fleet_macs` of the hosts in ``sources`` (site files or an Ansible inventory,
    comma-separated, as ``kvmops fleet --fleet``), read in parallel; none when ``sources`` names
    no host (nothing to avoid but the host's own)."""
    names = [s.strip() for s in sources.split(",") if s.strip()]
    if not names:
        return frozenset()
    from kvmops.facts.fleet import load_fleet, read_fleet  # only when a fleet is given (ansible-core, threads)

    hosts = load_fleet(names)
    return fleet_macs(read_fleet(hosts, progress=progress), here)
