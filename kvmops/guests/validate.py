"""Checks a guest spec against the host before anything is defined (pure; facts passed in)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from kvmops import guards
from kvmops.errors import InvalidInput, NotFound, SafetyError
from kvmops.guests.domain import DomainInfo, HostLimits
from kvmops.guests.spec import GuestSpec, check_site
from kvmops.guests.xml import disk_source, read_domain
from kvmops.lvm.paths import lv_path
from kvmops.lvm.state import LvmState
from kvmops.site import Site
from kvmops.units import human


def check_limits(spec: GuestSpec, limits: HostLimits) -> None:
    """Memory and vCPUs within what the host has (``virsh nodeinfo``, ``virsh maxvcpus``)."""
    if spec.memory_kib > limits.memory_kib:
        raise InvalidInput(
            f"guest {spec.name} asks for {human(spec.memory_kib * 1024)} of memory but the host has "
            f"{human(limits.memory_kib * 1024)}: give less (e.g. --memory 2g)"
        )
    most = min(limits.cpus, limits.max_vcpus)
    if spec.vcpus > most:
        raise InvalidInput(
            f"guest {spec.name} asks for {spec.vcpus} vCPUs but the host has {limits.cpus} CPUs "
            f"(libvirt allows {limits.max_vcpus}): give at most {most}"
        )


def check_disks(site: Site, spec: GuestSpec, lvm: LvmState) -> None:
    """Every disk LV is a guest LV (never a host LV) and exists in the site's VG."""
    for lv in spec.disk_lvs(site):
        guards.not_host_lv(lv, site.lv_prefix)
        if lvm.get(lv) is None:
            raise NotFound(
                f"disk LV {site.vg}/{lv} of guest {spec.name} does not exist: create it first "
                f"(kvmops lv create {lv} --size 10g --apply) and copy the image onto it"
            )


def _disk_key(source: str) -> str:
    """One spelling per disk: ``VG/LV`` for ``/dev/VG/LV`` and ``/dev/mapper/VG-LV`` alike."""
    return lv_path(source) or os.path.normpath(source)


def check_not_shared(site: Site, spec: GuestSpec, others: Iterable[DomainInfo]) -> None:
    """No other guest uses one of this guest's disks (two guests on one disk corrupt it),
    however its definition spells the disk's path."""
    mine = {_disk_key(disk_source(site, lv)): disk_source(site, lv) for lv in spec.disk_lvs(site)}
    if spec.disk_path:
        mine[_disk_key(spec.disk_path)] = spec.disk_path
    for other in others:
        if other.name == spec.name:
            continue
        theirs = {_disk_key(s) for s in read_domain(other.xml).disk_sources}
        shared = {path for key, path in mine.items() if key in theirs}
        if shared:
            raise SafetyError(
                f"guest {other.name} already uses {', '.join(sorted(shared))}: a disk belongs to one "
                "guest only; pick another LV"
            )


def check_spec(site: Site, spec: GuestSpec, limits: HostLimits, lvm: LvmState | None,
               others: Iterable[DomainInfo] = ()) -> None:
    """All checks before define: bridges, host limits, disk LVs, disks not shared."""
    check_site(site, spec)
    check_limits(spec, limits)
    if lvm is not None:
        check_disks(site, spec, lvm)
    check_not_shared(site, spec, others)
