"""Facts for unit tests: an LVM report (real captured fixtures) and guests, as one HostFacts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kvmops.guests.domain import DomainInfo, HostLimits
from kvmops.hostfacts import HostFacts
from kvmops.lvm.state import LvmState
from kvmops.net.facts import NetFacts
from kvmops.site import Site, load_site

LIMITS = HostLimits(memory_kib=64 * 1024 * 1024, cpus=16, max_vcpus=16)


def domain(name: str, *disks: str, active: bool = False, bridges: Iterable[str] = (),
           autostart: bool = False) -> DomainInfo:
    """A guest with block disks (``/dev/rl_build/vmx``) and bridge NICs, as libvirt lists it."""
    devs = "".join(f"<disk type='block' device='disk'><source dev='{d}'/><target dev='vd{chr(97 + i)}'/></disk>"
                   for i, d in enumerate(disks))
    devs += "".join(f"<interface type='bridge'><source bridge='{b}'/></interface>" for b in bridges)
    xml = (f"<domain type='kvm'><name>{name}</name><memory>1048576</memory><vcpu>1</vcpu>"
           f"<devices>{devs}</devices></domain>")
    return DomainInfo(name, "running" if active else "shut off", active, autostart, True, xml, xml)


def host_facts(lvm: LvmState, *, site: Site | None = None, domains: Iterable[DomainInfo] = (),
               net: NetFacts | None = None, files: Mapping[str, str | None] | None = None,
               paths: Mapping[str, bool] | None = None,
               guest_logs: Mapping[str, str | None] | None = None) -> HostFacts:
    return HostFacts(site=site or load_site(), lvm=lvm, domains=tuple(domains), limits=LIMITS,
                     read_at="2026-11-30T00:00:00+00:00", net_facts=net, files=dict(files or {}),
                     paths=dict(paths or {}), guest_logs_read=guest_logs)


def empty_facts(site: Site | None = None) -> HostFacts:
    """A host with the site's VG empty and no guest: what the gate judges a test's plan
    against when the plan only writes files in the site's folders."""
    from kvmops.lvm.facts import VG

    return host_facts(LvmState(VG((site or load_site()).vg, 100 << 30, 100 << 30, 4 << 20, 0), ()), site=site)
