"""The hosts of a group of an Ansible inventory, with their variables (pure readers).

Three forms, as a team keeps them: the JSON of ``ansible-inventory --list`` (with or without
``--export``), and the YAML and INI inventory files. For the files, Ansible itself is the
reference (:func:`via_ansible` runs ``ansible-inventory -i FILE --list`` where it is
installed); without it, :func:`read_yaml` / :func:`read_ini` read the common subset (groups,
hosts, vars, children) and refuse what only Ansible understands (host ranges such as
``web[01:10]``, inventory plugins, ``!vault`` values), saying so.

Variables follow Ansible's precedence for that subset: ``all`` < parent group < child group
< host.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvmops.errors import ConfigError

_RANGE = re.compile(r"\[[^\]]*:[^\]]*\]")


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
        """The host's variables: group vars from ``all`` down to the host's own groups, then its own."""
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

    def _groups_of(self, host: str) -> list[str]:
        """``all`` first, then each group containing the host, parents before children."""
        order = self._lineage_down("all") if "all" in self.groups else list(self.groups)
        return [g for g in order if g == "all" or host in self._members(g)]


def read_list_json(text: str, source: str) -> Inventory:
    """The JSON of ``ansible-inventory --list`` (``--export`` keeps group vars in the groups)."""
    try:
        data = json.loads(text)
        meta = data.get("_meta", {})
        hostvars = {str(h): dict(v) for h, v in (meta.get("hostvars") or {}).items()}
        groups = {str(name): Group(tuple(g.get("hosts", ())), tuple(g.get("children", ())), g.get("vars"))
                  for name, g in data.items() if name != "_meta"}
    except (ValueError, AttributeError, TypeError) as exc:
        raise ConfigError(f"{source}: not the JSON of `ansible-inventory --list` ({exc})") from None
    return Inventory(source, groups, hostvars)


def via_ansible(path: Path) -> Inventory:
    """``ansible-inventory -i PATH --list --export``: Ansible's own reading of the file."""
    tool = shutil.which("ansible-inventory")
    if tool is None:
        raise ConfigError("ansible-inventory is not installed")
    done = subprocess.run([tool, "-i", str(path), "--list", "--export"], capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise ConfigError(f"{path}: ansible-inventory failed: {done.stderr.strip()[-500:]}")
    return read_list_json(done.stdout, str(path))


def read_yaml(text: str, source: str) -> Inventory:
    """A YAML inventory (``all: {hosts:, vars:, children: {...}}``), the common subset."""
    import yaml

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: an inventory is a mapping of groups (all: ...)")
    groups: dict[str, Group] = {}
    hostvars: dict[str, dict[str, Any]] = {}
    for name, body in data.items():
        _yaml_group(str(name), body, groups, hostvars, source)
    return Inventory(source, groups, hostvars)


def _yaml_group(name: str, body: Any, groups: dict[str, Group], hostvars: dict[str, dict[str, Any]],
                source: str) -> None:
    body = body or {}
    if not isinstance(body, dict) or set(body) - {"hosts", "vars", "children"}:
        raise ConfigError(f"{source}: group {name!r}: only hosts, vars and children are understood here "
                          "(run ansible-inventory to use the rest)")
    hosts = body.get("hosts") or {}
    for host, hv in hosts.items():
        _plain_host(str(host), source)
        hostvars.setdefault(str(host), {}).update(hv or {})
    children = body.get("children") or {}
    for child, cbody in children.items():
        _yaml_group(str(child), cbody, groups, hostvars, source)
    old = groups.get(name, Group())
    groups[name] = Group((*old.hosts, *map(str, hosts)), (*old.children, *map(str, children)),
                         {**(old.vars or {}), **(body.get("vars") or {})})


def read_ini(text: str, source: str) -> Inventory:
    """An INI inventory: ``[group]`` host lines with ``key=value``, ``[group:vars]``, ``[group:children]``."""
    groups: dict[str, dict[str, Any]] = {"all": {"hosts": [], "children": [], "vars": {}}}
    hostvars: dict[str, dict[str, Any]] = {}
    section, kind = "ungrouped", "hosts"
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith((";", "#")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section, _, kind = line[1:-1].partition(":")
            kind = kind or "hosts"
            if kind not in ("hosts", "vars", "children"):
                raise ConfigError(f"{source}:{n}: section [{line[1:-1]}] is not understood here")
            groups.setdefault(section, {"hosts": [], "children": [], "vars": {}})
            continue
        g = groups.setdefault(section, {"hosts": [], "children": [], "vars": {}})
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise ConfigError(f"{source}:{n}: a [{section}:vars] line is key=value, got {line!r}")
            g["vars"][key.strip()] = _ini_value(value.strip())
        elif kind == "children":
            g["children"].append(line)
        else:
            host, *pairs = line.split()
            _plain_host(host, f"{source}:{n}")
            g["hosts"].append(host)
            hostvars.setdefault(host, {}).update(_pairs(pairs, f"{source}:{n}"))
    for name in list(groups):
        if name != "all" and name not in groups["all"]["children"]:
            groups["all"]["children"].append(name)
    return Inventory(source, {k: Group(tuple(v["hosts"]), tuple(v["children"]), v["vars"]) for k, v in groups.items()},
                     hostvars)


def _pairs(pairs: list[str], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"{where}: host variables are key=value, got {pair!r}")
        out[key] = _ini_value(value)
    return out


def _ini_value(text: str) -> Any:
    """Ansible's INI values: quoted strings stay strings; numbers become numbers."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        return text


def _plain_host(host: str, where: str) -> None:
    if _RANGE.search(host):
        raise ConfigError(f"{where}: host pattern {host!r} is a range: only Ansible expands those; "
                          "give kvmops the JSON of `ansible-inventory --list` instead")


def read_inventory(path: Path) -> Inventory:
    """An inventory file: JSON as ``ansible-inventory --list`` writes it, else YAML or INI read
    by Ansible itself when installed, else by the readers here."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"inventory {path}: {exc.strerror}") from None
    if text.lstrip().startswith("{"):
        return read_list_json(text, str(path))
    if shutil.which("ansible-inventory"):
        return via_ansible(path)
    if path.suffix in (".yml", ".yaml"):
        return read_yaml(text, str(path))
    return read_ini(text, str(path))
