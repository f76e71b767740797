"""Cheap checks of parameter values, run before the kernel starts (no I/O).

A check is chosen by the parameter's name, the same in every runbook (``guest``, ``size``,
``vlan``, ...); a help comment containing ``one of: a, b, c`` limits a str parameter to those
words. Empty strings are "not given" and left to the runbook (it says what it does then).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from kvmops import names
from kvmops.errors import InvalidInput, NotFound
from kvmops.runbook.params import Param, Value
from kvmops.site import Site
from kvmops.units import parse_size

Check = Callable[[Value], object]
_CHOICES = re.compile(r"one of:\s*([\w-]+(?:\s*,\s*[\w-]+)*)")


def _lv(value: Value) -> object:
    return names.lv_name(str(value), limit=names.MAX_LV_NAME + 16)


def _between(lo: float, hi: float, what: str) -> Check:
    def check(value: Value) -> object:
        if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
            raise InvalidInput(f"{what} {value!r} is outside {lo:g}-{hi:g}")
        return value

    return check


def _ipv4(value: Value) -> object:
    try:
        return ipaddress.IPv4Interface(str(value))
    except ValueError:
        raise InvalidInput(f"{value!r} is not an IPv4 address (e.g. 10.5.68.237)") from None


def _size(value: Value) -> object:
    return parse_size(str(value))


def _place(value: Value) -> object:
    from kvmops.errors import ConfigError
    from kvmops.transfer.place import parse_place

    try:
        return parse_place(str(value))
    except ConfigError as exc:
        raise InvalidInput(str(exc)) from None


def _site(value: Value) -> object:
    from kvmops.errors import ConfigError
    from kvmops.site import load_site, resolve_site

    try:
        return load_site(resolve_site(str(value)))
    except ConfigError as exc:
        raise InvalidInput(str(exc)) from None


def _stamp(value: Value) -> object:
    if not re.fullmatch(r"\d{8}T\d{6}Z", str(value)):
        raise InvalidInput(f"{value!r} is not a backup's time stamp (e.g. 20261129T030000Z)")
    return value


def _guests(value: Value) -> object:
    return [names.guest_name(g.strip()) for g in str(value).split(",") if g.strip()]


def _vlans(value: Value) -> list[int]:
    """``2368`` or ``2368,223``: VLAN ids (guest-create's NICs, one per VLAN)."""
    ids = [v.strip() for v in str(value).split(",")]
    if not any(ids):
        raise InvalidInput("give at least one VLAN, e.g. 2368 or 2368,223")
    return [_vlan_id(v) for v in ids]


def _addresses(value: Value) -> object:
    """``2368=10.5.68.237,223=132.230.223.200``: VLAN=ADDRESS pairs (their VLANs and networks
    are checked against the site by :func:`check_against_site`)."""
    from kvmops.net.nics import parse_addresses

    pairs = parse_addresses(str(value), "pairs")
    for ip in pairs.values():
        _ipv4(ip)
    return pairs


def _vlan_id(text: str) -> int:
    try:
        vlan = int(text, 10)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a VLAN id (1-4094)") from None
    if not 1 <= vlan <= 4094:
        raise InvalidInput(f"VLAN {vlan} is outside 1-4094")
    return vlan


CHECKS: dict[str, Check] = {
    "guest": lambda v: names.guest_name(str(v)),
    "new_name": lambda v: names.guest_name(str(v)),
    "guests": _guests,
    "lv": _lv,
    "snapshot": _lv,
    "origin": _lv,
    "size": _size,
    "snapshot_size": _size,
    "by": _size,
    "grow_by": _size,
    "memory": _size,
    "vlan": _between(1, 4094, "VLAN"),
    "vlans": _vlans,
    "threshold": _between(0, 99, "fill threshold (%)"),
    "interval": _between(1, 3600, "progress interval (s)"),
    "vcpus": _between(1, 256, "vCPU count"),
    "lines": _between(1, 100000, "line count"),
    "address": _ipv4,
    "addresses": _addresses,
    "gateway_vlan": _between(0, 4094, "VLAN (0: the first)"),
    "bridge": lambda v: names.ifname(str(v)),
    "uplink": lambda v: names.ifname(str(v)),
    "keep": _between(0, 10000, "backups to keep"),
    "boot_seconds": _between(0, 86400, "boot time (s)"),
    "shutdown_timeout": _between(1, 86400, "shutdown time (s)"),
    "place": _place,
    "target": _site,
    "backup": _stamp,
}


def choices(param: Param) -> tuple[str, ...]:
    """The allowed words of a str parameter whose help says ``one of: a, b, c``."""
    m = _CHOICES.search(param.help)
    if not m or param.type is not str:
        return ()
    return tuple(w.strip() for w in m.group(1).split(",") if w.strip())


def check_values(declared: tuple[Param, ...], values: dict[str, Value]) -> None:
    """Run the check of each parameter; the error names the parameter and the rule."""
    for p in declared:
        value = values[p.name]
        if value == "" and p.type is str:
            continue
        allowed = choices(p)
        if allowed and value not in allowed:
            raise InvalidInput(f"parameter {p.name}: {value!r} is not one of: {', '.join(allowed)}")
        check = CHECKS.get(p.name)
        if check is None:
            continue
        try:
            check(value)
        except InvalidInput as exc:
            raise InvalidInput(f"parameter {p.name}: {exc}") from None


def check_against_site(values: dict[str, Value], site: Site) -> None:
    """Checks that need the site file but no host: the VLAN is a network of the site, and a
    static address lies in that VLAN's network (not its network, broadcast or gateway); with
    ``vlans`` (guest-create) every static address and ``gateway_vlan`` as guest-create takes them."""
    vlan = values.get("vlan")
    if isinstance(values.get("vlans"), str | int) and str(values["vlans"]).strip():
        ids = _vlans(values["vlans"])
        for v in ids:
            try:
                site.network(v)
            except NotFound as exc:
                raise InvalidInput(f"parameter vlans: {exc}") from None
        _guest_addresses(values, site, ids)
        return
    if isinstance(vlan, int) and not isinstance(vlan, bool):
        try:
            site.network(vlan)
        except NotFound as exc:
            raise InvalidInput(f"parameter vlan: {exc}") from None
        address, guest = values.get("address"), values.get("guest")
        if isinstance(address, str) and address and isinstance(guest, str) and guest:
            from kvmops.net.address import static_address

            try:
                static_address(site, guest, vlan, address)
            except InvalidInput as exc:
                raise InvalidInput(f"parameter address: {exc}") from None


def _guest_addresses(values: dict[str, Value], site: Site, vlans: list[int]) -> None:
    """guest-create's static addresses: the errors name the parameter (address, addresses, gateway_vlan)."""
    guest = values.get("guest")
    if not isinstance(guest, str) or not guest:
        return
    from kvmops.net.nics import guest_addresses

    address, addresses, gateway = values.get("address", ""), values.get("addresses", ""), values.get("gateway_vlan", 0)
    try:
        guest_addresses(site, guest, vlans, address=str(address), addresses=str(addresses),
                        gateway_vlan=gateway if isinstance(gateway, int) else str(gateway))
    except InvalidInput as exc:
        raise InvalidInput(f"parameter {exc}") from None
