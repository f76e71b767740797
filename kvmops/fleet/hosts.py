"""The hosts of a fleet, each a :class:`~kvmops.site.Site`: from site files, or from the hosts
of a group of an Ansible inventory whose variables give the site values.

Per host (its Ansible variables, group vars included):

- ``kvmops_site``: a site file (relative to the inventory's folder) with the defaults;
- ``kvmops``: a mapping shaped like a site file (``{storage: {vg: rl_build}, network: ...}``),
  merged over it;
- ``ansible_host``, ``ansible_user`` (default ``root``), ``ansible_port``,
  ``ansible_ssh_private_key_file``: how kvmops reaches it over SSH; ``kvmops_known_hosts``: the
  known_hosts file to check its host key against (strict, always).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvmops.errors import ConfigError
from kvmops.fleet.ansible import Inventory, read_inventory
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
    """The site of inventory host ``name`` from its variables (see the module doc)."""
    hv = inv.vars_of(name)
    where = f"{inv.source}: host {name}"
    data: dict[str, Any] = {}
    if "kvmops_site" in hv:
        data = read_site_data(folder / str(hv["kvmops_site"]))
    extra = hv.get("kvmops", {})
    if not isinstance(extra, Mapping):
        raise ConfigError(f"{where}: kvmops must be a mapping shaped like a site file")
    data = _merge(data, extra)
    host = data.setdefault("host", {})
    host["name"] = name
    host["ssh"] = f"{hv.get('ansible_user', 'root')}@{hv.get('ansible_host', name)}"
    for var, key in (("ansible_port", "ssh_port"), ("ansible_ssh_private_key_file", "ssh_identity"),
                     ("kvmops_known_hosts", "ssh_known_hosts")):
        if var in hv:
            host[key] = int(hv[var]) if key == "ssh_port" else str(Path(folder, str(hv[var])))
    return site_from_data(data, where)


def load_fleet(sources: Sequence[str], group: str = DEFAULT_GROUP) -> tuple[FleetHost, ...]:
    """Every host of the sources: a ``.toml`` is one site file; anything else an Ansible
    inventory (its hosts of ``group``). A host named twice is an error."""
    hosts: list[FleetHost] = []
    for src in sources:
        path = Path(src).expanduser()
        if path.suffix == ".toml":
            site = load_site(path)
            hosts.append(FleetHost(site.name, site, str(path)))
            continue
        inv = read_inventory(path)
        hosts += [FleetHost(n, site_of_host(inv, n, path.parent), str(path)) for n in inv.hosts_of(group)]
    names = [h.name for h in hosts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"host(s) {', '.join(twice)} named twice in {', '.join(sources)}")
    if not hosts:
        raise ConfigError(f"no hosts in {', '.join(sources) or '(nothing given)'}: give site files or an inventory")
    return tuple(hosts)
