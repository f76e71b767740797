"""The hosts of a fleet, each a :class:`~kvmops.site.Site`: from site files, or from the hosts
of a group of an Ansible inventory whose variables give the site values (pure: the inventory
is read by :mod:`kvmops.facts.inventory`, the fleet put together by :func:`kvmops.facts.fleet.load_fleet`).

Per host (its Ansible variables, group vars included):

- ``kvmops_site``: a site file (relative to the inventory's folder) with the defaults;
- ``kvmops``: a mapping shaped like a site file (``{storage: {vg: rl_build}, network: ...}``),
  merged over it;
- ``ansible_host``, ``ansible_user`` (default ``root``), ``ansible_port``,
  ``ansible_ssh_private_key_file``: how kvmops reaches it over SSH; ``kvmops_known_hosts``: the
  known_hosts file to check its host key against (strict, always).

Each value is checked as the site file's would be (a port is a number, a destination has no
shell characters, a libvirt URI is ``qemu:///system`` or ``qemu+ssh://``: never one that runs a
command, such as ``qemu+ext``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvmops.errors import ConfigError
from kvmops.fleet.ansible import Inventory
from kvmops.site import Site, load_site, read_site_data, site_from_data

DEFAULT_GROUP = "kvm"


@dataclass(frozen=True)
class FleetHost:
    name: str
    site: Site
    source: str


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def site_of_host(inv: Inventory, name: str, folder: Path) -> Site:
    """The site of inventory host ``name`` from its variables (see the module doc); every value
    is checked as a site file's would be, and the connection only as kvmops makes it."""
    hv = inv.vars_of(name)
    where = f"{inv.source}: host {name}"
    data: dict[str, Any] = {}
    if "kvmops_site" in hv:
        data = read_site_data(folder / _text(hv["kvmops_site"], where, "kvmops_site"))
    extra = hv.get("kvmops", {})
    if not isinstance(extra, Mapping):
        raise ConfigError(f"{where}: kvmops must be a mapping shaped like a site file, got {_kind(extra)}")
    uri = extra.get("libvirt", {}).get("uri") if isinstance(extra.get("libvirt"), Mapping) else None
    data = _merge(data, extra)
    if uri is not None and not (uri in INVENTORY_URIS or (isinstance(uri, str) and uri.startswith("qemu+ssh://"))):
        raise ConfigError(f"{where}: libvirt.uri {str(uri)[:120]!r}: an inventory may name only "
                          f"{' or '.join(INVENTORY_URIS)} or qemu+ssh://user@host/system (kvmops connects over SSH "
                          "itself, with strict host keys)")
    host = data.setdefault("host", {})
    if not isinstance(host, dict):
        raise ConfigError(f"{where}: kvmops.host must be a mapping")
    host["name"] = name
    user = _text(hv.get("ansible_user", "root"), where, "ansible_user")
    host["ssh"] = f"{user}@{_text(hv.get('ansible_host', name), where, 'ansible_host')}"
    if "ansible_port" in hv:
        host["ssh_port"] = _port(hv["ansible_port"], where)
    for var, key in (("ansible_ssh_private_key_file", "ssh_identity"), ("kvmops_known_hosts", "ssh_known_hosts")):
        if var in hv:
            value = _text(hv[var], where, var)
            host[key] = value if value.startswith("~/") else str(Path(folder, value))
    return site_from_data(data, where)


INVENTORY_URIS = ("qemu:///system",)


def _kind(value: object) -> str:
    return f"a {type(value).__name__}" if not isinstance(value, str) else repr(value[:80])


def _text(value: object, where: str, var: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise ConfigError(f"{where}: {var} must be text, got {_kind(value)}")
    return value


def _port(value: object, where: str) -> int:
    """``ansible_port``: a number 1-65535 (as Ansible keeps it: an int, or the digits of one)."""
    digits = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not digits.isdigit() or not 0 < int(digits) < 65536:
        raise ConfigError(f"{where}: ansible_port must be a port number 1-65535, got {_kind(value)}")
    return int(digits)


def fleet_of(sources: Sequence[str], group: str, read: Callable[[Path], Inventory]) -> tuple[FleetHost, ...]:
    """Every host of the sources: a ``.toml`` is one site file; anything else an Ansible
    inventory (its hosts of ``group``), read by ``read``. A host named twice is an error."""
    hosts: list[FleetHost] = []
    for src in sources:
        path = Path(src).expanduser()
        if path.suffix == ".toml":
            site = load_site(path)
            hosts.append(FleetHost(site.name, site, str(path)))
            continue
        inv = read(path)
        hosts += [FleetHost(n, site_of_host(inv, n, path.resolve().parent), str(path)) for n in inv.hosts_of(group)]
    names = [h.name for h in hosts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"host(s) {', '.join(twice)} named twice in {', '.join(sources)}")
    if not hosts:
        raise ConfigError(f"no hosts in {', '.join(sources) or '(nothing given)'}: give site files or an inventory")
    return tuple(hosts)
