"""A guest as libvirt lists it, and what the host can give a guest (pure values)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DomainInfo:
    """One guest from the libvirt listing: name, state, flags, its live domain XML and its
    persistent definition (what the next start uses; the same as ``xml`` when shut off)."""

    name: str
    state: str
    active: bool
    autostart: bool
    persistent: bool
    xml: str
    inactive_xml: str = ""


@dataclass(frozen=True)
class HostLimits:
    """What the host can give one guest: memory (KiB), CPUs, libvirt's vCPU maximum."""

    memory_kib: int
    cpus: int
    max_vcpus: int
