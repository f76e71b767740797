"""A multihomed guest as seen from outside (issue 24): which NIC (by MAC) has which name and
addresses, where the default routes go, which DNS servers NetworkManager and resolv.conf
have, and the profiles in the image, all read over SSH. The parsers are pure (tested on real
``ip -j`` output); :func:`look` reads through one of the guest's forwarded SSH ports.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import dataclass

from kvmops_lab.errors import LabError
from kvmops_lab.guestboot import BootedGuest, SshLogin

KEYFILES = "/etc/NetworkManager/system-connections"


@dataclass(frozen=True)
class Link:
    """One ethernet NIC in the guest: its name, MAC and IPv4 addresses with prefix."""

    name: str
    mac: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    gateway: str
    dev: str


@dataclass(frozen=True)
class NicView:
    """Everything :func:`look` read; ``profiles``: file name -> content."""

    links: tuple[Link, ...]
    default_routes: tuple[Route, ...]
    dns_by_dev: dict[str, tuple[str, ...]]
    resolv_conf: tuple[str, ...]
    profiles: dict[str, str]
    raw: dict[str, str]  # the `ip -j` outputs read, by command (kept as fixtures)

    def by_mac(self, mac: str) -> Link | None:
        return next((ln for ln in self.links if ln.mac == mac.lower()), None)


def parse_links(ip_addr_json: str) -> tuple[Link, ...]:
    """``ip -j address show`` -> the ethernet links, each with its MAC and IPv4 addresses. (Not
    ``ip -j -4 address show``: with ``-4`` the output has neither the MAC nor the link type.)"""
    out = []
    for d in json.loads(ip_addr_json or "[]"):
        if d.get("link_type") != "ether":
            continue
        addrs = tuple(f"{a['local']}/{a['prefixlen']}" for a in d.get("addr_info", []) if a.get("family") == "inet")
        out.append(Link(d["ifname"], str(d.get("address", "")).lower(), addrs))
    return tuple(out)


def parse_routes(ip_route_json: str) -> tuple[Route, ...]:
    """``ip -j -4 route show default`` -> each default route's gateway and device."""
    return tuple(Route(str(r.get("gateway", "")), str(r.get("dev", ""))) for r in json.loads(ip_route_json or "[]"))


def parse_resolv(text: str) -> tuple[str, ...]:
    return tuple(ln.split()[1] for ln in text.splitlines() if ln.startswith("nameserver ") and len(ln.split()) > 1)


def _out(g: BootedGuest, login: SshLogin, port: int | None, *command: str) -> str:
    res = g.ssh(login, *command, port=port)
    if res.returncode != 0:
        raise LabError(f"{shlex.join(command)} in {g.name} exited {res.returncode}: {res.stderr.strip()[-300:]}")
    return res.stdout


def look(g: BootedGuest, login: SshLogin, port: int | None = None) -> NicView:
    """Read the guest's NICs, routes, DNS and NetworkManager profiles (through ``port``)."""
    raw = {"ip -j address show": _out(g, login, port, "ip", "-j", "address", "show"),
           "ip -j -4 route show default": _out(g, login, port, "ip", "-j", "-4", "route", "show", "default")}
    links = parse_links(raw["ip -j address show"])
    if not links:  # an empty view would make every per-NIC check vacuous
        raise LabError(f"{g.name}: `ip -j address show` lists no ethernet link: {raw['ip -j address show'][:300]}")
    routes = parse_routes(raw["ip -j -4 route show default"])
    dns = {}
    for ln in links:
        text = _out(g, login, port, "nmcli", "-t", "-g", "IP4.DNS", "device", "show", ln.name)
        dns[ln.name] = tuple(s.strip() for s in text.replace("|", "\n").splitlines() if s.strip())
    resolv = parse_resolv(_out(g, login, port, "cat", "/etc/resolv.conf"))
    # one name a line: profile files may have spaces ("Wired connection 1.nmconnection")
    names = [n for n in _out(g, login, port, "sudo", "-n", "ls", "-1A", KEYFILES).splitlines() if n]
    profiles = {n: _out(g, login, port, "sudo", "-n", "cat", f"{KEYFILES}/{n}") for n in names}
    return NicView(links, routes, dns, resolv, profiles, raw)


def reaches(g: BootedGuest, login: SshLogin, port: int) -> str:
    """``hostname -I`` through ``port``: SSH with the key reaches the address forwarded there."""
    return _out(g, login, port, "hostname", "-I").strip()


def reach_each(g: BootedGuest, login: SshLogin, timeout: float = 120.0) -> tuple[str, ...]:
    """:func:`reaches` through each of the guest's forwarded SSH ports (one per NIC), each tried
    until ``timeout`` (a NIC's address may come up after the first's)."""
    return tuple(_reach_in_time(g, login, port, timeout) for port in g.ssh_ports)


def _reach_in_time(g: BootedGuest, login: SshLogin, port: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return reaches(g, login, port)
        except (LabError, subprocess.TimeoutExpired):
            if time.monotonic() > deadline:
                raise
            time.sleep(3)
