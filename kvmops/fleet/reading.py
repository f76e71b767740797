"""One host's reading in a fleet: its facts, or why there are none (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from kvmops.fleet.hosts import FleetHost
from kvmops.hostfacts import HostFacts


@dataclass(frozen=True)
class HostReading:
    """One host's facts, or why there are none; and how long the reading took."""

    host: FleetHost
    facts: HostFacts | None
    error: str
    seconds: float
