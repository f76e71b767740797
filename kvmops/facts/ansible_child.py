"""The process that reads an inventory with ansible-core's own library (started by
:mod:`kvmops.facts.inventory`, never imported by kvmops itself): ``python -m
kvmops.facts.ansible_child SOURCE``.

It parses SOURCE with the inventory plugins its environment enables (the parent enables only
the file formats, unless the operator allowed plugins) and computes each host's variables as
Ansible does (``VariableManager.get_vars``: group_vars/host_vars, groups of one depth by
``ansible_group_priority`` then name). Nothing is templated. It prints the JSON of
``ansible-inventory --list`` with only the variables kvmops uses, plain values only; on an
error, one line on stderr and exit 3.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

WANTED = ("ansible_host", "ansible_user", "ansible_port", "ansible_ssh_private_key_file", "kvmops",
          "kvmops_site", "kvmops_known_hosts")
FAILED = 3


class Refused(Exception):
    """A value kvmops does not read (a vault-encrypted one, an object)."""


def plain(value: Any, where: str) -> Any:
    """The value as plain JSON data (Ansible's tagged strings, dicts and lists become plain ones)."""
    if type(value).__name__ == "EncryptedString":
        raise Refused(f"{where} is vault-encrypted: kvmops reads no vault values (put it in the host's site file)")
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise Refused(f"{where} is a {type(value).__name__}, not plain data")


def listing(source: str) -> dict[str, Any]:
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.vars.manager import VariableManager

    init_plugin_loader([])
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[source])
    variables = VariableManager(loader=loader, inventory=inventory)
    out: dict[str, Any] = {}
    for name, group in inventory.groups.items():
        out[name] = {"hosts": [h.name for h in group.hosts], "children": [c.name for c in group.child_groups]}
    hostvars = {}
    for host in inventory.get_hosts():
        got = variables.get_vars(host=host, include_hostvars=False, stage="all")
        hostvars[host.name] = {k: plain(got[k], f"host {host.name}: {k}") for k in WANTED if k in got}
    out["_meta"] = {"hostvars": hostvars}
    return out


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m kvmops.facts.ansible_child SOURCE", file=sys.stderr)
        return 2
    from ansible.errors import AnsibleError

    try:
        data = listing(sys.argv[1])
    except (AnsibleError, Refused) as exc:
        print(" ".join(str(exc).split())[:2000], file=sys.stderr)
        return FAILED
    json.dump(data, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
