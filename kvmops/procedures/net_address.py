"""``kvmops net address`` as functions over facts (guide 3.3.3): a static guest address
checked against the site's registry (``<xml_dir>/addresses.toml``, a file fact: missing =
empty), the DHCP reminder, recording and releasing it, and the verification of the file.

Read the facts with :func:`wanted`; plans come from those facts only, and the executor
writes the file.
"""

from __future__ import annotations

from collections.abc import Sequence

from kvmops.hostfacts import HostFacts, Wanted
from kvmops.net import registry
from kvmops.net.address import StaticAddress, check_free, dhcp_reminder, static_address
from kvmops.plan import Plan
from kvmops.procedures.base import Verdict
from kvmops.site import Site


def wanted(site: Site) -> Wanted:
    """The registry file, besides LVM, guests and limits."""
    return registry.wanted(site)


def check(facts: HostFacts, guest: str, vlan: int | str, ip: str, *, dns: Sequence[str] | None = None,
          device: str = "eth0") -> StaticAddress:
    """The validated address: in the VLAN's network, not its network, broadcast or router
    address, and not recorded for another guest."""
    known = registry.registry_of(facts).known()
    return static_address(facts.site, guest, vlan, ip, known=known, dns=dns, device=device)


def reminder(facts: HostFacts, a: StaticAddress) -> str | None:
    """The DHCP reservation reminder, unless the site says the network has no DHCP."""
    return dhcp_reminder(facts.site, a.network, address=a.address, guest=a.guest)


def record(facts: HostFacts, a: StaticAddress) -> Plan:
    """Record ``a`` (a no-op when it is recorded already); refused when another guest has it."""
    reg = registry.registry_of(facts)
    check_free(a.address, a.guest, reg.known())
    return registry.record(reg, a)


def release(facts: HostFacts, guest: str, vlan: int | None = None) -> Plan:
    """Forget the guest's address(es) (one VLAN's, or all)."""
    return registry.release(registry.registry_of(facts), guest, vlan)


def verify_recorded(facts: HostFacts, a: StaticAddress) -> Verdict:
    reg = registry.registry_of(facts)
    have = reg.get(a.guest, a.network.vlan)
    return Verdict.of([(have is not None and have.ip == a.address,
                        f"{reg.path} records {a.address} for guest {a.guest} on VLAN {a.network.vlan}")])


def verify_released(facts: HostFacts, guest: str, vlan: int | None = None) -> Verdict:
    reg = registry.registry_of(facts)
    left = [e for e in reg.entries if e.guest == guest and vlan in (None, e.vlan)]
    where = f" on VLAN {vlan}" if vlan is not None else ""
    return Verdict.of([(not left, f"{reg.path} records no address for guest {guest}{where}")])
