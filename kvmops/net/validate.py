"""Validation of what a person types about networks: VLAN ids, interface names, addresses.

Every check runs before a command is built; each error says what was wrong and what to do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from kvmops import names
from kvmops.errors import InvalidInput
from kvmops.site import Network, Site

VLAN_MIN, VLAN_MAX = 1, 4094


def vlan_id(value: int | str) -> int:
    """A VLAN id 1-4094 (0 and 4095 are reserved by 802.1Q)."""
    if isinstance(value, bool):
        raise InvalidInput(f"VLAN id {value!r} is not a number: give 1-4094")
    try:
        vid = int(str(value).strip(), 10)
    except ValueError:
        raise InvalidInput(f"VLAN id {value!r} is not a number: give 1-4094") from None
    if not VLAN_MIN <= vid <= VLAN_MAX:
        raise InvalidInput(f"VLAN id {vid} is outside {VLAN_MIN}-{VLAN_MAX} (0 and 4095 are reserved)")
    return vid


def network(site: Site, vlan: int | str) -> Network:
    """The site's network of a VLAN (range checked first; NotFound names the known VLANs)."""
    net = site.network(vlan_id(vlan))
    bridge_name(net.bridge)
    return net


def bridge_name(name: str) -> str:
    """A bridge interface name: at most 15 characters (``virbr1.2368`` is 11)."""
    try:
        return names.ifname(name)
    except InvalidInput as exc:
        raise InvalidInput(f"bridge {exc}; choose a shorter bridge name in the site file") from None


def vlan_ifname(uplink: str, vlan: int) -> str:
    """``<uplink>.<vlan>``, the tagged interface on the uplink: ``ens802f1.2368`` (13 chars)."""
    name = f"{uplink}.{vlan_id(vlan)}"
    if len(name) > names.MAX_IFNAME:
        raise InvalidInput(
            f"VLAN interface name {name!r} is {len(name)} characters: Linux allows at most "
            f"{names.MAX_IFNAME}. Rename the uplink {uplink!r} to something shorter "
            "(a systemd .link file), or keep the VLAN on another NIC"
        )
    return names.ifname(name)


def ipv4(value: str, what: str = "address") -> ipaddress.IPv4Address:
    """One IPv4 address such as ``10.5.68.237``."""
    try:
        return ipaddress.IPv4Address(str(value).strip())
    except (ipaddress.AddressValueError, ValueError):
        raise InvalidInput(f"{what} {value!r} is not an IPv4 address (e.g. 10.5.68.237)") from None


def interface(value: str, net: Network) -> ipaddress.IPv4Interface:
    """``10.5.68.237`` or ``10.5.68.237/24``; a given prefix must be the network's."""
    text = str(value).strip()
    if "/" not in text:
        return ipaddress.IPv4Interface(f"{ipv4(text)}/{net.cidr.prefixlen}")
    addr, _, prefix = text.partition("/")
    if not prefix.isdigit() or not 0 <= int(prefix) <= 32:
        raise InvalidInput(f"{value!r} is not an address/prefix such as 10.5.68.237/24")
    iface = ipaddress.IPv4Interface(f"{ipv4(addr)}/{int(prefix)}")
    if iface.network.prefixlen != net.cidr.prefixlen:
        raise InvalidInput(
            f"{value!r} has prefix /{prefix} but VLAN {net.vlan} is {net.cidr}: use /{net.cidr.prefixlen} "
            "or leave the prefix out"
        )
    return iface


def dns_servers(values: Iterable[str]) -> tuple[ipaddress.IPv4Address, ...]:
    """DNS servers as IPv4 addresses; at least one."""
    out = tuple(ipv4(v, "DNS server") for v in values)
    if not out:
        raise InvalidInput("no DNS server: give one (--dns) or set network.dns in the site file")
    return out
