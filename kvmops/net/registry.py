"""The site-side registry of static guest addresses: ``<xml_dir>/addresses.toml``.

Why a file on the host: a static address lives in the guest's own NetworkManager profile,
which the host cannot see, and libvirt knows only MAC addresses. So kvmops keeps what it
assigned next to the guests' domain XML files (guide 3.2: ``/root/kvm``) and checks new
addresses against it. The file is a fact of the host (:func:`wanted`, then
:func:`registry_of`): a missing file is an empty registry. Writes are plan steps that the
one executor runs::

    # Static guest addresses assigned by kvmops (guide 3.3.3). One [[address]] per guest NIC.
    [[address]]
    guest = "test1"
    vlan = 2368
    ip = "10.5.68.237"

Writes go to ``addresses.toml.tmp`` first and are then renamed, so a reader never sees half a
file.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from kvmops import names
from kvmops.cmd import Cmd, change
from kvmops.errors import ConfigError
from kvmops.net.address import StaticAddress
from kvmops.plan import Plan
from kvmops.site import Site

if TYPE_CHECKING:
    from kvmops.hostfacts import HostFacts, Wanted

FILENAME = "addresses.toml"
HEADER = "# Static guest addresses assigned by kvmops (guide 3.3.3). One [[address]] per guest NIC.\n"


@dataclass(frozen=True)
class Entry:
    guest: str
    vlan: int
    ip: ipaddress.IPv4Address


@dataclass(frozen=True)
class Registry:
    path: str
    entries: tuple[Entry, ...] = ()

    def known(self) -> dict[str, tuple[str, ...]]:
        """guest -> its addresses: the ``known`` input of :func:`address.static_address`."""
        out: dict[str, tuple[str, ...]] = {}
        for e in self.entries:
            out[e.guest] = (*out.get(e.guest, ()), str(e.ip))
        return out

    def get(self, guest: str, vlan: int) -> Entry | None:
        return next((e for e in self.entries if e.guest == guest and e.vlan == vlan), None)

    def with_address(self, a: StaticAddress) -> Registry:
        """The registry with ``a`` recorded (replacing the guest's address on that VLAN)."""
        kept = tuple(e for e in self.entries if (e.guest, e.vlan) != (a.guest, a.network.vlan))
        entry = Entry(a.guest, a.network.vlan, a.address)
        return replace(self, entries=tuple(sorted((*kept, entry), key=_order)))

    def without(self, guest: str, vlan: int | None = None) -> Registry:
        return replace(self, entries=tuple(
            e for e in self.entries if not (e.guest == guest and vlan in (None, e.vlan))))

    def render(self) -> str:
        body = "".join(f'\n[[address]]\nguest = "{e.guest}"\nvlan = {e.vlan}\nip = "{e.ip}"\n'
                       for e in self.entries)
        return HEADER + body


def _order(e: Entry) -> tuple[int, int]:
    return (e.vlan, int(e.ip))


def registry_path(site: Site) -> str:
    return f"{site.xml_dir.rstrip('/')}/{FILENAME}"


def parse_registry(text: str, path: str) -> Registry:
    """Read the TOML text; every error names the file and the entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - {"address"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (only [[address]])")
    raw = data.get("address", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: address must be an array of tables ([[address]])")
    entries = tuple(_entry(path, i, item) for i, item in enumerate(raw))
    seen: dict[ipaddress.IPv4Address, str] = {}
    for e in entries:
        if e.ip in seen and seen[e.ip] != e.guest:
            raise ConfigError(f"{path}: {e.ip} is recorded for both {seen[e.ip]} and {e.guest}")
        seen[e.ip] = e.guest
    return Registry(path, entries)


def _entry(path: str, i: int, item: object) -> Entry:
    where = f"{path}: address[{i}]"
    if not isinstance(item, dict) or set(item) != {"guest", "vlan", "ip"}:
        raise ConfigError(f"{where}: needs exactly guest, vlan and ip")
    guest, vlan, ip = item["guest"], item["vlan"], item["ip"]
    if not isinstance(guest, str) or not isinstance(vlan, int) or not isinstance(ip, str):
        raise ConfigError(f"{where}: guest and ip are strings, vlan a number")
    try:
        return Entry(names.guest_name(guest), vlan, ipaddress.IPv4Address(ip))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def wanted(site: Site) -> Wanted:
    """What :func:`kvmops.facts.read_facts` must read for :func:`registry_of`."""
    from kvmops.hostfacts import Wanted

    return Wanted(files=(registry_path(site),))


def registry_of(facts: HostFacts) -> Registry:
    """The registry as the facts hold it; a missing file is an empty registry."""
    path = registry_path(facts.site)
    text = facts.file(path)
    return Registry(path) if text is None else parse_registry(text, path)


def write_cmds(reg: Registry) -> tuple[Cmd, Cmd]:
    """``install -D -m 0644 /dev/stdin PATH.tmp <<< TEXT`` then ``mv -f -T -- PATH.tmp PATH``."""
    tmp = reg.path + ".tmp"
    return (change("install", "-D", "-m", "0644", "/dev/stdin", tmp, stdin=reg.render()),
            change("mv", "-f", "-T", "--", tmp, reg.path))


def record(reg: Registry, a: StaticAddress) -> Plan:
    """Record ``a`` in the registry (a no-op when it is recorded already)."""
    plan = Plan(f"record {a.address} for guest {a.guest} on VLAN {a.network.vlan} in {reg.path}")
    have = reg.get(a.guest, a.network.vlan)
    if have is not None and have.ip == a.address:
        return plan.noop(f"{reg.path} already records {a.address} for {a.guest}")
    if have is not None:
        plan.notes.append(f"replaces {have.ip}, recorded for {a.guest} on VLAN {a.network.vlan}")
    new = reg.with_address(a)
    tmp_write, rename = write_cmds(new)
    plan.add(f"write the registry with {len(new.entries)} address(es)", tmp_write)
    return plan.add(f"replace {reg.path}", rename)


def release(reg: Registry, guest: str, vlan: int | None = None) -> Plan:
    """Forget a guest's address(es) (e.g. when the guest is removed)."""
    plan = Plan(f"release the addresses of {guest} in {reg.path}")
    new = reg.without(guest, vlan)
    if new.entries == reg.entries:
        return plan.noop(f"{reg.path} records no address for {guest}")
    tmp_write, rename = write_cmds(new)
    plan.add(f"write the registry without {guest}", tmp_write)
    return plan.add(f"replace {reg.path}", rename)
