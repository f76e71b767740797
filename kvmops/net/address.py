"""Static guest addresses (guide 3.3.3): validation, and what to put inside the guest.

:func:`static_address` checks an address against the VLAN's network (inside the CIDR; not
the network, broadcast or ``.254`` gateway address) and against addresses kvmops already
knows for other guests. The pure builders then give the three forms the guide's setting
takes inside a guest:

- :func:`nmcli_modify_argv`: the guide's command, for a shell inside the running guest,
- :func:`nm_keyfile`: ``/etc/NetworkManager/system-connections/eth0.nmconnection`` (mode 600),
  the same settings NetworkManager 1.42 writes for that command,
- :func:`ifcfg`: ``/etc/sysconfig/network-scripts/ifcfg-eth0`` for older images.
"""

from __future__ import annotations

import ipaddress
import shlex
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from kvmops import names
from kvmops.errors import InvalidInput
from kvmops.guests import macs
from kvmops.net import validate
from kvmops.site import DHCP_NO, DHCP_YES, Network, Site

KEYFILE_DIR = "/etc/NetworkManager/system-connections"
KEYFILE_MODE = 0o600
IFCFG_DIR = "/etc/sysconfig/network-scripts"
_UUID_NS = uuid.UUID("6f1d3c1e-8f0e-4a8e-9d51-6b766d6f7073")  # kvmops' namespace for profile UUIDs

Known = Mapping[str, str | Collection[str]]
"""Addresses kvmops already knows: guest -> address (or several), with or without /prefix."""


@dataclass(frozen=True)
class StaticAddress:
    """A validated static address of one guest NIC.

    ``nic``: the NIC's index (0: the first, on the first of the guest's VLANs); ``mac``: its
    MAC when known (the profile then binds it by MAC, whatever the guest names it); ``device``:
    the name it has with kernel names (``eth<nic>``), used only where there is no MAC.
    ``default_route``: the default route goes via this NIC's gateway (one NIC of a guest);
    ``dns``: the DNS servers, set on one NIC only (empty on the others).
    """

    guest: str
    network: Network
    interface: ipaddress.IPv4Interface
    dns: tuple[ipaddress.IPv4Address, ...]
    device: str = "eth0"
    profile: str = "eth0"
    mac: str | None = None
    nic: int = 0
    default_route: bool = True

    @property
    def address(self) -> ipaddress.IPv4Address:
        return self.interface.ip

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.network.gateway

    @property
    def with_prefix(self) -> str:
        """``10.5.68.237/24``"""
        return str(self.interface)

    @property
    def keyfile_path(self) -> str:
        return f"{KEYFILE_DIR}/{self.profile}.nmconnection"

    @property
    def ifcfg_path(self) -> str:
        return f"{IFCFG_DIR}/ifcfg-{self.profile}"

    @property
    def what(self) -> str:
        """``NIC 1 (MAC 52:54:00:..)`` or ``NIC 1 (eth0)``: which NIC, as the plan names it."""
        return f"NIC {self.nic + 1} ({'MAC ' + self.mac if self.mac else self.device})"

    def describe(self) -> str:
        """``10.5.68.237/24 on VLAN 2368, default route via 10.5.68.254, DNS 132.230.200.200``"""
        out = f"{self.with_prefix} on VLAN {self.network.vlan}"
        out += f", default route via {self.gateway}" if self.default_route else ", no default route"
        return out + (f", DNS {', '.join(str(d) for d in self.dns)}" if self.dns else "")


def static_address(site: Site, guest: str, vlan: int | str, ip: str, *, known: Known | None = None,
                   dns: Sequence[str] | None = None, device: str = "eth0",
                   profile: str | None = None, mac: str | None = None) -> StaticAddress:
    """Validate ``ip`` for ``guest`` on ``vlan``; raise :class:`InvalidInput` saying why not."""
    names.guest_name(guest)
    names.ifname(device)
    net = validate.network(site, vlan)
    iface = validate.interface(ip, net)
    check_in_network(site, net, iface.ip)
    check_free(iface.ip, guest, known or {})
    servers = validate.dns_servers(dns if dns is not None else [str(d) for d in site.dns])
    return StaticAddress(guest, net, iface, servers, device, _profile_name(profile or device),
                         macs.normal(mac) if mac else None)


def _profile_name(name: str) -> str:
    if not name or "/" in name or name.startswith(".") or "\n" in name:
        raise InvalidInput(f"profile name {name!r} cannot be a file name: use e.g. 'eth0'")
    return name


def check_in_network(site: Site, net: Network, ip: ipaddress.IPv4Address) -> None:
    """Inside the VLAN's CIDR, and not its network, broadcast or gateway address."""
    if ip not in net.cidr:
        other = next((n for n in site.networks if ip in n.cidr), None)
        hint = f": it belongs to VLAN {other.vlan} ({other.cidr})" if other else ""
        raise InvalidInput(f"{ip} is not in VLAN {net.vlan}'s network {net.cidr}{hint}")
    if ip == net.cidr.network_address:
        raise InvalidInput(f"{ip} is the network address of {net.cidr}: pick a host address")
    if ip == net.cidr.broadcast_address:
        raise InvalidInput(f"{ip} is the broadcast address of {net.cidr}: pick a host address")
    if ip == net.gateway:
        raise InvalidInput(f"{ip} is the default router of VLAN {net.vlan} ({net.gateway}): pick another")


def check_free(ip: ipaddress.IPv4Address, guest: str, known: Known) -> None:
    """Refuse an address kvmops already knows for another guest."""
    for other, addrs in known.items():
        if other == guest:
            continue
        for a in [addrs] if isinstance(addrs, str) else addrs:
            if _bare(a) == ip:
                raise InvalidInput(f"{ip} is taken by guest {other!r}: pick another address "
                                   f"(or release it from {other} first)")


def _bare(text: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Interface(text.strip()).ip
    except ValueError:
        return None


def nmcli_modify_argv(a: StaticAddress) -> tuple[str, ...]:
    """The guide's command, for inside the guest:

    ``nmcli con modify eth0 connection.interface-name eth0 ipv4.method manual
    ipv4.addresses 10.5.68.237/24 ipv4.gateway 10.5.68.254 ipv4.dns 132.230.200.200
    ipv4.may-fail no``

    With the NIC's MAC known, the profile is bound to it (``ethernet.mac-address``, and no
    longer to a name: the NIC's name depends on the image); a NIC without the default route
    gets ``ipv4.never-default yes`` and no gateway, and DNS servers only where they belong (one NIC).
    """
    bind = ("connection.interface-name", "", "ethernet.mac-address", a.mac) if a.mac \
        else ("connection.interface-name", a.device)
    route = ("ipv4.gateway", str(a.gateway)) if a.default_route else ("ipv4.never-default", "yes")
    dns = ("ipv4.dns", ",".join(str(d) for d in a.dns)) if a.dns else ()
    return ("nmcli", "con", "modify", a.profile, *bind, "ipv4.method", "manual", "ipv4.addresses", a.with_prefix,
            *route, *dns, "ipv4.may-fail", "no")


def profile_uuid(a: StaticAddress) -> str:
    """A stable UUID per guest and profile, so rewriting the keyfile keeps the profile."""
    return str(uuid.uuid5(_UUID_NS, f"{a.guest}/{a.profile}"))


def nm_keyfile(a: StaticAddress) -> str:
    """``eth0.nmconnection`` with the settings NetworkManager 1.42 writes for the guide's
    command (``address1=ADDR/PREFIX,GATEWAY``; ``may-fail=false``); install with mode 600.
    Bound to the NIC's MAC when known (``[ethernet] mac-address=``), else to its name."""
    dns = "".join(f"{d};" for d in a.dns)
    bind = "" if a.mac else f"interface-name={a.device}\n"
    ethernet = f"mac-address={a.mac.upper()}\n" if a.mac else ""
    address = f"address1={a.with_prefix},{a.gateway}\n" if a.default_route else f"address1={a.with_prefix}\n"
    return (
        "[connection]\n"
        f"id={a.profile}\n"
        f"uuid={profile_uuid(a)}\n"
        "type=ethernet\n"
        f"{bind}"
        f"\n[ethernet]\n{ethernet}"
        "\n[ipv4]\n"
        f"{address}"
        + (f"dns={dns}\n" if dns else "")
        + "may-fail=false\n"
        "method=manual\n"
        + ("" if a.default_route else "never-default=true\n")
        + "\n[ipv6]\n"
        "addr-gen-mode=default\n"
        "method=auto\n"
        "\n[proxy]\n"
    )


def ifcfg(a: StaticAddress) -> str:
    """``ifcfg-eth0`` (initscripts / NM ifcfg-rh) with the same settings; ``ipv4.may-fail no``
    is ``IPV4_FAILURE_FATAL=yes``; bound by ``HWADDR`` when the MAC is known."""
    lines = [
        "# static address set by kvmops (guide 3.3.3)",
        f"HWADDR={a.mac}" if a.mac else f"DEVICE={a.device}",
        f"NAME={a.profile}",
        f"UUID={profile_uuid(a)}",
        "TYPE=Ethernet",
        "ONBOOT=yes",
        "BOOTPROTO=none",
        f"IPADDR={a.address}",
        f"PREFIX={a.interface.network.prefixlen}",
        *([f"GATEWAY={a.gateway}"] if a.default_route else []),
        *(f"DNS{i}={d}" for i, d in enumerate(a.dns, 1)),
        f"DEFROUTE={'yes' if a.default_route else 'no'}",
        "IPV4_FAILURE_FATAL=yes",
        "IPV6INIT=yes",
        "IPV6_AUTOCONF=yes",
    ]
    return "\n".join(lines) + "\n"


def dhcp_reminder(site: Site, network: Network | int | str, *, address: object = None,
                  guest: str = "", mac: str | None = None) -> str | None:
    """The guide's NOTE (3.3.3) for a static address on ``network`` (a site network or its
    VLAN id): shown unless the site says the network has no DHCP (``dhcp = "no"``).

    ``address``, ``guest`` and the NIC's ``mac``, when given, are named in the reminder; with
    the MAC known the reservation can be made before the guest's first boot.
    """
    net = network if isinstance(network, Network) else validate.network(site, network)
    return _reminder(net, address, guest, mac)


def _reminder(net: Network, address: object, guest: str, mac: str | None = None) -> str | None:
    if net.dhcp == DHCP_NO:
        return None
    what = str(address) if address else "the static address"
    if guest:
        what += f" (guest {guest})"
    status = ("has an active DHCP service" if net.dhcp == DHCP_YES
              else "may have a DHCP service (the site file does not say; set dhcp = \"no\" there if not)")
    if mac:
        return (f"VLAN {net.vlan} {status}: before the guest's first boot, add a reservation for {what} with "
                f"MAC {mac} on {net.bridge} to the DHCP table, to avoid address conflicts (guide 3.3.3)")
    return (f"VLAN {net.vlan} {status}: add a reservation for {what} with the guest's MAC address "
            f"on {net.bridge} (`virsh domiflist GUEST`) to the DHCP table, to avoid address conflicts (guide 3.3.3)")


def summary(a: StaticAddress) -> str:
    """What ``kvmops net address`` prints for one NIC: the address, the guest-side command and files."""
    parts = [
        f"guest {a.guest} {a.what}: {a.with_prefix} on VLAN {a.network.vlan} (bridge {a.network.bridge}), "
        + (f"default route via {a.gateway}" if a.default_route else "no default route (another NIC has it)")
        + (f", DNS {', '.join(str(d) for d in a.dns)}" if a.dns else ", DNS set on another NIC"),
        "",
        "# inside the running guest (console, guide 3.3.2):",
        shlex.join(nmcli_modify_argv(a)),
        "",
        f"# or offline in the image: {a.keyfile_path} (mode 600)",
        nm_keyfile(a).rstrip("\n"),
        "",
        f"# older images: {a.ifcfg_path}",
        ifcfg(a).rstrip("\n"),
    ]
    reminder = _reminder(a.network, a.address, a.guest, a.mac)
    if reminder:
        parts += ["", f"NOTE: {reminder}"]
    return "\n".join(parts)
