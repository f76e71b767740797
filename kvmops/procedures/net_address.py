"""``kvmops net address`` as functions over facts (guide 3.3.3): a static guest address
checked against the site's registry (``<xml_dir>/addresses.toml``, a file fact: missing =
empty), the DHCP reminder, recording and releasing it, and the verification of the file.

Read the facts with :func:`wanted`; plans come from those facts only, and the executor
writes the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kvmops.errors import NotFound
from kvmops.guests.xml import read_domain
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.net import nics, registry
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


def check_all(facts: HostFacts, guest: str, given: Mapping[int, str], *, gateway_vlan: int | str = 0,
              dns: Sequence[str] | None = None) -> tuple[StaticAddress, ...]:
    """Every static address of ``guest`` (VLAN -> address), the same list guest-create takes
    (:mod:`kvmops.net.nics`): checked against the registry; on a defined guest placed on its
    NICs (in their order, each with its MAC), else on NICs in the order given."""
    known = registry.registry_of(facts).known()
    vlans, macs = nic_vlans(facts, guest)
    found = nics.from_pairs(facts.site, guest, vlans or list(given), given, gateway_vlan=gateway_vlan, known=known,
                            dns=dns)
    return nics.with_macs(found, macs) if macs else found


def nic_vlans(facts: HostFacts, guest: str) -> tuple[list[int], tuple[str, ...]]:
    """The VLAN of each NIC of the defined guest (0 for a bridge that is no site network) and
    its MACs; nothing when the guest is not defined."""
    info = facts.domain(guest)
    if info is None:
        return [], ()
    dom = read_domain(info.inactive_xml or info.xml)
    vlans = []
    for bridge in dom.bridges:
        try:
            vlans.append(facts.site.network_by_bridge(bridge).vlan)
        except NotFound:
            vlans.append(0)
    return vlans, dom.macs if dom.macs and all(dom.macs) else ()


def reminder(facts: HostFacts, a: StaticAddress) -> str | None:
    """The DHCP reservation reminder, unless the site says the network has no DHCP."""
    return dhcp_reminder(facts.site, a.network, address=a.address, guest=a.guest, mac=a.mac)


def record(facts: HostFacts, a: StaticAddress) -> Plan:
    """Record ``a`` (a no-op when it is recorded already); refused when another guest has it."""
    reg = registry.registry_of(facts)
    check_free(a.address, a.guest, reg.known())
    return registry.record(reg, a)


def record_all(facts: HostFacts, found: Sequence[StaticAddress]) -> Plan:
    """Record every address of ``found`` in one write (a no-op when all are recorded already)."""
    if len(found) == 1:
        return record(facts, found[0])
    reg = registry.registry_of(facts)
    for a in found:
        check_free(a.address, a.guest, reg.known())
        reg = reg.with_address(a)
    what = ", ".join(f"{a.address} (VLAN {a.network.vlan})" for a in found)
    plan = Plan(f"record {what} for guest {found[0].guest} in {reg.path}")
    if reg.entries == registry.registry_of(facts).entries:
        return plan.noop(f"{reg.path} already records them")
    tmp_write, rename = registry.write_cmds(reg)
    plan.add(f"write the registry with {len(reg.entries)} address(es)", tmp_write)
    return plan.add(f"replace {reg.path}", rename)


def release(facts: HostFacts, guest: str, vlan: int | None = None) -> Plan:
    """Forget the guest's address(es) (one VLAN's, or all)."""
    return registry.release(registry.registry_of(facts), guest, vlan)


def verify_recorded(facts: HostFacts, a: StaticAddress) -> Verdict:
    reg = registry.registry_of(facts)
    have = reg.get(a.guest, a.network.vlan)
    return Verdict.of([(have is not None and have.ip == a.address,
                        f"{reg.path} records {a.address} for guest {a.guest} on VLAN {a.network.vlan}")])


def verify_recorded_all(facts: HostFacts, found: Sequence[StaticAddress]) -> Verdict:
    each = [verify_recorded(facts, a) for a in found]
    return Verdict(all(v.ok for v in each), tuple(ln for v in each for ln in v.lines))


def verify_released(facts: HostFacts, guest: str, vlan: int | None = None) -> Verdict:
    reg = registry.registry_of(facts)
    left = [e for e in reg.entries if e.guest == guest and vlan in (None, e.vlan)]
    where = f" on VLAN {vlan}" if vlan is not None else ""
    return Verdict.of([(not left, f"{reg.path} records no address for guest {guest}{where}")])
