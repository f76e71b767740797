"""The host-network runbook (guide 2.2) as functions over facts: the network as it is
(:func:`check`), the procedure that creates or repairs its bridge and VLAN port
(:func:`procedure`), and the verification in the kernel and NetworkManager (:func:`verify`).

Read the facts with :func:`wanted` (the network facts besides LVM, guests and limits).
"""

from __future__ import annotations

from kvmops.executor import Procedure
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.net import ops, validate
from kvmops.net.drift import check_network
from kvmops.procedures.base import Verdict, need, single
from kvmops.site import Network, Site

WANTED = Wanted(net=True)
STP = {"keep": None, "on": True, "off": False}


def wanted(_site: Site | None = None) -> Wanted:
    """The network facts (NetworkManager profiles and devices, kernel links)."""
    return WANTED


def stp_choice(value: str) -> bool | None:
    """The runbook's ``stp`` parameter: keep (None), on, off."""
    need(value in STP, f"stp={value!r}: give one of {', '.join(STP)}")
    return STP[value]


def network(facts: HostFacts, vlan: int | str) -> Network:
    """The site's network of ``vlan``, its VLAN interface name checked (at most 15 characters)."""
    net = validate.network(facts.site, vlan)
    validate.vlan_ifname(facts.site.uplink, net.vlan)
    return net


def check(facts: HostFacts, vlan: int | str) -> str:
    """The network now: what the site says, and how the host differs from the guide.
    Refuses when NetworkManager does not answer (kvmops manages bridges through it)."""
    net = network(facts, vlan)
    need(facts.net.nm_running, f"NetworkManager does not answer on {facts.site.name} ({facts.net.nm_error}): "
                               "start it (systemctl start NetworkManager) and run again")
    status = check_network(facts.site, facts.net, net)
    lines = [f"VLAN {net.vlan}: bridge {net.bridge}, {net.cidr}, gateway {net.gateway}, DHCP {net.dhcp_text}"]
    lines += [f"  {f.severity}: {f.problem}" for f in status.findings]
    if status.ok:
        lines.append("  the bridge is as the guide wants it")
    return "\n".join(lines)


def procedure(facts: HostFacts, vlan: int | str, stp: bool | None = None) -> Procedure:
    """Create or repair the bridge and its VLAN port; planned again from fresh facts before it runs."""
    net = network(facts, vlan)
    return single(facts, f"guest network VLAN {net.vlan} ({net.bridge})",
                  lambda f: ops.ensure_network(f, net.vlan, stp), WANTED)


def verify(facts: HostFacts, vlan: int | str) -> Verdict:
    """The decisive state: the kernel's bridge (ageing 0, no address) with the VLAN interface
    as its port, and an active NetworkManager profile with IP disabled (it survives a reboot)."""
    site, nf = facts.site, facts.net
    net = network(facts, vlan)
    link = nf.link(net.bridge)
    profiles = nf.bridge_profiles(net.bridge)
    port = next((lk for lk in nf.ports(net.bridge) if lk.is_vlan), None)
    ifname = f"{site.uplink}.{net.vlan}"
    return Verdict.of([
        (link is not None and link.is_bridge, f"{net.bridge} is a bridge in the kernel"),
        (link is not None and link.ageing_cs == 0, f"{net.bridge} has ageing time 0 in the kernel"),
        (link is not None and not link.addresses, f"{net.bridge} has no IP address"),
        (len(profiles) == 1 and profiles[0].device == net.bridge
         and (profiles[0].ipv4_method, profiles[0].ipv6_method) == ("disabled", "disabled"),
         f"one NetworkManager profile for {net.bridge}, active, IPv4 and IPv6 disabled"),
        (port is not None and port.name == ifname and port.vlan_id == net.vlan and port.parent == site.uplink,
         f"{ifname} (VLAN {net.vlan} on {site.uplink}) is a port of {net.bridge} in the kernel"),
    ])
