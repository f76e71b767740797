"""A multihomed guest's static addresses: one per VLAN, the default route on one NIC, DNS once (pure).

The one list that both setups of guest-create (``nocloud``, ``tweaks``) and ``kvmops net
address`` take: :func:`guest_addresses` turns the parameters into a tuple of
:class:`~kvmops.net.address.StaticAddress`, one per NIC that has a static address, in NIC
order::

    vlans = "2368,223"                      # NIC 1 on VLAN 2368, NIC 2 on VLAN 223
    address = "10.5.68.237"                 # the first VLAN's address (as before)
    addresses = "223=132.230.223.200"       # VLAN=address, comma-separated, any VLAN of the guest
    gateway_vlan = 0                        # the default route: 0 = the first VLAN with a static address

Rules: any NIC may have a static address, one per VLAN; exactly one of them carries the
default route (``gateway_vlan``, else the first NIC, when it has a static address; when the
first NIC has none, no static NIC gets a default route: the first NIC's DHCP gives it); the
DNS servers go on that NIC (or, without one, on the first static NIC), so they are set once.
Every error names the parameter. The MACs are chosen later, from the host's facts
(:func:`with_macs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from kvmops.errors import InvalidInput, NotFound
from kvmops.net.address import Known, StaticAddress, static_address
from kvmops.net.validate import vlan_id
from kvmops.site import Site


def parse_addresses(text: str, what: str = "addresses") -> dict[int, str]:
    """``"2368=10.5.68.237,223=132.230.223.200"`` -> ``{2368: "10.5.68.237", 223: ...}``."""
    out: dict[int, str] = {}
    for item in (p.strip() for p in str(text).split(",")):
        if not item:
            continue
        vlan, sep, ip = item.partition("=")
        if not sep or not vlan.strip() or not ip.strip():
            raise InvalidInput(f"{what}: {item!r} is not VLAN=ADDRESS (e.g. 2368=10.5.68.237,223=132.230.223.200)")
        try:
            vid = vlan_id(vlan)
        except InvalidInput as exc:
            raise InvalidInput(f"{what}: {exc}") from None
        if vid in out:
            raise InvalidInput(f"{what}: VLAN {vid} is given twice (one static address per VLAN)")
        out[vid] = ip.strip()
    return out


def wanted_addresses(vlans: Sequence[int], address: str = "", addresses: str = "") -> dict[int, str]:
    """VLAN -> address from both parameters (``address`` is the first VLAN's), checked against ``vlans``."""
    given = parse_addresses(addresses)
    for vid in given:
        if vid not in vlans:
            raise InvalidInput(f"addresses: VLAN {vid} is not one of the guest's vlans "
                               f"({','.join(str(v) for v in vlans)}): a guest has a NIC only on those")
    if str(address).strip():
        if vlans[0] in given:
            raise InvalidInput(f"address and addresses both give VLAN {vlans[0]}'s address: give it once "
                               "(address is the first VLAN's)")
        given[vlans[0]] = str(address).strip()
    return given


def guest_addresses(site: Site, guest: str, vlans: Sequence[int], *, address: str = "", addresses: str = "",
                    gateway_vlan: int | str = 0, known: Known | None = None,
                    dns: Sequence[str] | None = None) -> tuple[StaticAddress, ...]:
    """Every static address of ``guest`` (NIC i on ``vlans[i]``), validated; see the module doc."""
    given = wanted_addresses(vlans, address, addresses)
    first = "address" if str(address).strip() else "addresses"
    return from_pairs(site, guest, vlans, given, gateway_vlan=gateway_vlan, known=known, dns=dns,
                      labels={vlans[0]: first} if vlans else {})


def from_pairs(site: Site, guest: str, vlans: Sequence[int], given: Mapping[int, str], *,
               gateway_vlan: int | str = 0, known: Known | None = None, dns: Sequence[str] | None = None,
               labels: Mapping[int, str] | None = None) -> tuple[StaticAddress, ...]:
    """The addresses of ``given`` (VLAN -> address, each a VLAN of ``vlans``) on the guest's
    NICs; an error names ``labels[vlan]`` (the parameter it came from, default ``addresses``)."""
    missing = [v for v in given if v not in vlans]
    if missing:
        raise InvalidInput(f"addresses: guest {guest} has no NIC on VLAN {missing[0]} (its VLANs: "
                           f"{','.join(map(str, vlans)) or 'none'})")
    gw = _gateway_vlan(vlans, given, gateway_vlan)
    with_dns = gw if gw is not None else next((v for v in vlans if v in given), None)
    out = []
    for nic, vid in enumerate(vlans):
        if vid not in given:
            continue
        try:
            a = static_address(site, guest, vid, given[vid], known=known, dns=dns, device=f"eth{nic}")
        except (InvalidInput, NotFound) as exc:
            raise InvalidInput(f"{(labels or {}).get(vid, 'addresses')}: {exc}") from None
        out.append(replace(a, nic=nic, default_route=vid == gw, dns=a.dns if vid == with_dns else ()))
    _distinct(out)
    return tuple(out)


def _gateway_vlan(vlans: Sequence[int], given: Mapping[int, str], gateway_vlan: int | str) -> int | None:
    """The VLAN whose NIC carries the default route, or None (no static NIC does)."""
    if isinstance(gateway_vlan, bool):
        raise InvalidInput(f"gateway_vlan: {gateway_vlan!r} is not a VLAN id")
    if str(gateway_vlan).strip() in ("", "0"):
        return vlans[0] if vlans and vlans[0] in given else None
    try:
        vid = vlan_id(gateway_vlan)
    except InvalidInput as exc:
        raise InvalidInput(f"gateway_vlan: {exc}") from None
    if vid not in vlans:
        raise InvalidInput(f"gateway_vlan: VLAN {vid} is not one of the guest's vlans ({','.join(map(str, vlans))})")
    if vid not in given:
        raise InvalidInput(f"gateway_vlan: VLAN {vid} has no static address: give it one (addresses), or leave "
                           "gateway_vlan at 0 (the first VLAN)")
    return vid


def _distinct(found: list[StaticAddress]) -> None:
    seen: dict[str, int] = {}
    for a in found:
        if str(a.address) in seen:
            raise InvalidInput(f"addresses: {a.address} is given for VLAN {seen[str(a.address)]} and VLAN "
                               f"{a.network.vlan}")
        seen[str(a.address)] = a.network.vlan


def with_macs(found: Sequence[StaticAddress], macs: Sequence[str]) -> tuple[StaticAddress, ...]:
    """The addresses with their NICs' MACs (``macs[i]`` is NIC i's)."""
    return tuple(replace(a, mac=macs[a.nic] if a.nic < len(macs) else a.mac) for a in found)


def routes_note(vlans: Sequence[int], found: Sequence[StaticAddress]) -> str:
    """Where the default route and the DNS servers go, in one line."""
    gw = next((a for a in found if a.default_route), None)
    dns = next((a for a in found if a.dns), None)
    route = (f"default route via {gw.gateway} on NIC {gw.nic + 1} (VLAN {gw.network.vlan})" if gw
             else f"no static NIC has the default route: NIC 1 (VLAN {vlans[0]}) gets it from DHCP, if any")
    servers = (f"DNS {', '.join(str(d) for d in dns.dns)} on NIC {dns.nic + 1}" if dns
               else "DNS from DHCP")
    return f"{route}; {servers}"
