"""The hosts of a group of an Ansible inventory, with their variables (pure): the JSON of
``ansible-inventory --list`` (with or without ``--export``), bounded and checked.

Ansible itself reads the inventory files (:mod:`kvmops.facts.inventory`: ansible-core's library
with only the file-format plugins) and hands over that JSON; an operator may also give it
directly. Variables follow Ansible's precedence: without ``--export`` each host's variables are
merged already; with it, group vars apply from ``all`` down, groups of one depth sorted by
``ansible_group_priority``, then by name (Ansible's ``sort_groups``), then the host's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kvmops.bounded import load_json
from kvmops.errors import ConfigError, InvalidInput

MAX_INVENTORY = 8 << 20  # bytes of one inventory file (or its JSON) read at most
MAX_DEPTH = 32  # nesting of the JSON (a host's kvmops mapping is a site file's shape: 4)
PRIORITY = "ansible_group_priority"


@dataclass(frozen=True)
class Group:
    hosts: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    vars: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Inventory:
    """Groups and per-host variables, the shape of ``ansible-inventory --list``."""

    source: str
    groups: Mapping[str, Group]
    hostvars: Mapping[str, Mapping[str, Any]]

    def hosts_of(self, group: str) -> tuple[str, ...]:
        """Every host of ``group`` and of its children, in inventory order, each once."""
        if group not in self.groups:
            known = ", ".join(sorted(g for g in self.groups if g not in ("all", "ungrouped"))) or "none"
            raise ConfigError(f"{self.source}: no group {group!r} (groups: {known}); name the group of the KVM hosts")
        return self._members(group)

    def _members(self, group: str) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for g in self._lineage_down(group):
            for h in self.groups[g].hosts:
                seen.setdefault(h, None)
        return tuple(seen)

    def vars_of(self, host: str) -> dict[str, Any]:
        """The host's variables by Ansible's precedence (see the module doc)."""
        merged: dict[str, Any] = {}
        for g in self._groups_of(host):
            merged.update(self.groups[g].vars or {})
        merged.update(self.hostvars.get(host, {}))
        return merged

    def _lineage_down(self, group: str) -> list[str]:
        out, todo = [], [group]
        while todo:
            g = todo.pop(0)
            if g in out or g not in self.groups:  # "ungrouped" is listed even when empty
                continue
            out.append(g)
            todo += list(self.groups.get(g, Group()).children)
        return out

    def _depths(self) -> dict[str, int]:
        """Each group's depth below ``all``: its longest path of parents (as Ansible counts)."""
        depth = {g: 0 for g in self.groups}
        for _ in range(len(self.groups)):  # relax along the edges; a cycle stops at the bound
            changed = False
            for name, g in self.groups.items():
                for child in g.children:
                    if child in depth and depth[child] < depth[name] + 1:
                        depth[child], changed = depth[name] + 1, True
            if not changed:
                break
        return depth

    def _groups_of(self, host: str) -> list[str]:
        """The host's groups (``all`` included) as Ansible applies their vars: by depth, then
        ``ansible_group_priority``, then name."""
        depth = self._depths()
        mine = [g for g in self.groups if g == "all" or host in self._members(g)]
        return sorted(mine, key=lambda g: (depth[g], _priority(self.groups[g]), g))


def _priority(group: Group) -> int:
    value = (group.vars or {}).get(PRIORITY, 1)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def is_list_json(text: str) -> bool:
    """The text looks like ``ansible-inventory --list`` output (it always has ``_meta``)."""
    return text.lstrip().startswith("{") and '"_meta"' in text


def read_list_json(text: str, source: str) -> Inventory:
    """The JSON of ``ansible-inventory --list`` (``--export`` keeps group vars in the groups),
    bounded (:data:`MAX_INVENTORY`, :data:`MAX_DEPTH`) and of the shape Ansible writes."""
    try:
        data = load_json(text, source, max_bytes=MAX_INVENTORY, max_depth=MAX_DEPTH)
        if not isinstance(data, dict):
            raise ValueError("a mapping of groups is expected")
        meta = _mapping(data.get("_meta", {}), "_meta")
        hostvars = {str(h): dict(_mapping(v, f"_meta.hostvars.{h}"))
                    for h, v in _mapping(meta.get("hostvars") or {}, "_meta.hostvars").items()}
        groups = {str(name): _group(name, g) for name, g in data.items() if name != "_meta"}
    except InvalidInput as exc:
        raise ConfigError(str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: not the JSON of `ansible-inventory --list` ({exc})") from None
    return Inventory(source, groups, hostvars)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{where} must be a mapping")
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise TypeError(f"{where} must be a list of names")
    return tuple(value)


def _group(name: str, g: Any) -> Group:
    body = _mapping(g, f"group {name}")
    return Group(_names(body.get("hosts", []), f"{name}.hosts"), _names(body.get("children", []), f"{name}.children"),
                 dict(_mapping(body["vars"], f"{name}.vars")) if "vars" in body else None)
