"""A recorded host: a site's facts as data (the demo site), so plan mode works for any input.

A recorded-facts file (TOML, named by the site's ``[host] recorded`` key) holds what one read
of a host returned: the LVM reports, the network reports, the files that exist with their
text, other paths that exist, and the images with their ``qemu-img info``. The reports keep
the exact layout the tools print, and :class:`RecordedSource` reads them with the same parsers
as the live host (:class:`kvmops.facts.LiveSource`), so every plan is made from facts exactly
as on a real host, for any valid parameters. Domains and limits come from the site's libvirt
(the demo's in-process test driver).

A file, path or image that is not recorded does not exist on that host. Nothing ever runs on
a recorded host: it is plan-only (:class:`kvmops.runners.recorded.RecordedRunner`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from kvmops.errors import ConfigError, InvalidInput, NotFound
from kvmops.lvm.facts import parse_lvs, parse_vgs
from kvmops.lvm.state import LvmState

if TYPE_CHECKING:
    from kvmops.guests.domain import DomainInfo, HostLimits
    from kvmops.host import Host
    from kvmops.images.probe import ImageInfo
    from kvmops.net.facts import NetFacts
    from kvmops.site import Site

LVM_KEYS = ("vgs", "lvs")
NET_KEYS = ("links", "port_vlans", "connections", "devices", "profiles")
SECTIONS = {"lvm", "net", "files", "paths", "images"}


class NotRecorded(NotFound):
    """The recorded host lacks a whole kind of facts (e.g. no network reports)."""


@dataclass(frozen=True)
class Recorded:
    """The recorded host: raw reports by name, files by path, existing paths, images by path."""

    path: str
    lvm: Mapping[str, str]
    net: Mapping[str, str] | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    paths: frozenset[str] = frozenset()
    images: Mapping[str, str] = field(default_factory=dict)


def load_recorded(path: str | Path) -> Recorded:
    """Read a recorded-facts file; every error names the file and the key."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"recorded facts file {p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return _Reader(str(p)).recorded(data)


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {why}")

    def recorded(self, data: dict[str, Any]) -> Recorded:
        unknown = set(data) - SECTIONS
        if unknown:
            raise self.fail(", ".join(sorted(unknown)), f"unknown section(s) (allowed: {', '.join(sorted(SECTIONS))})")
        if "lvm" not in data:
            raise self.fail("lvm", "is missing: a recorded host needs its vgs and lvs reports")
        net = self.texts(data, "net", NET_KEYS) if "net" in data else None
        paths = self.table(data, "paths").get("exist", [])
        if not isinstance(paths, list) or not all(isinstance(x, str) and x.startswith("/") for x in paths):
            raise self.fail("paths.exist", "must be a list of absolute paths")
        return Recorded(
            path=self.path,
            lvm=self.texts(data, "lvm", LVM_KEYS),
            net=net,
            files=self.by_path(data, "files"),
            paths=frozenset(os.path.normpath(x) for x in paths),
            images=self.by_path(data, "images"),
        )

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        section = data.get(key, {})
        if not isinstance(section, dict):
            raise self.fail(key, "must be a table")
        return section

    def texts(self, data: dict[str, Any], key: str, names: tuple[str, ...]) -> Mapping[str, str]:
        section = self.table(data, key)
        if set(section) != set(names):
            raise self.fail(key, f"needs exactly the reports {', '.join(names)}")
        for name, text in section.items():
            if not isinstance(text, str):
                raise self.fail(f"{key}.{name}", "must be the command's output as text")
        return MappingProxyType(dict(section))

    def by_path(self, data: dict[str, Any], key: str) -> Mapping[str, str]:
        section = self.table(data, key)
        for name, text in section.items():
            if not name.startswith("/") or not isinstance(text, str):
                raise self.fail(f"{key}.{name!r}", "must be an absolute path with its text")
        return MappingProxyType({os.path.normpath(k): v for k, v in section.items()})


class RecordedSource:
    """Facts of a recorded host (:class:`kvmops.facts.FactsSource`): its reports through the live
    parsers, its domains and limits from the site's libvirt."""

    def __init__(self, recorded: Recorded, host: Host) -> None:
        self.recorded = recorded
        self.host = host

    def lvm(self, site: Site) -> LvmState:
        """As :func:`kvmops.lvm.state.read_state` on the recorded ``vgs`` and ``lvs``."""
        vgs = parse_vgs(self.recorded.lvm["vgs"])
        match = [v for v in vgs if v.name == site.vg]
        if not match:
            known = ", ".join(v.name for v in vgs) or "none"
            raise NotFound(f"volume group {site.vg!r} does not exist on {site.name} (VGs there: {known})")
        lvs = tuple(lv for lv in parse_lvs(self.recorded.lvm["lvs"]) if lv.vg == site.vg)
        return LvmState(match[0], lvs)

    def domains(self) -> tuple[DomainInfo, ...]:
        return self.host.virt.domains()

    def limits(self, domain_type: str) -> HostLimits:
        return self.host.virt.limits(domain_type)

    def net(self) -> NetFacts:
        """As :func:`kvmops.net.facts.read_facts` on the recorded ip, bridge and nmcli reports."""
        from kvmops.net import iplink, nmcli
        from kvmops.net.facts import MANAGED_TYPES, NetFacts

        net = self.recorded.net
        if net is None:
            raise NotRecorded(f"{self.recorded.path} records no network facts ([net]): this recorded "
                              "host cannot plan bridges")
        refs = nmcli.parse_list(net["connections"])
        managed = {r.uuid for r in refs if r.type in MANAGED_TYPES}
        active = {r.uuid: r.device for r in refs}
        profiles = tuple(replace(p, device=active.get(p.uuid, ""))
                         for p in nmcli.parse_details(net["profiles"]) if p.uuid in managed)
        return NetFacts(profiles, nmcli.parse_devices(net["devices"]), iplink.parse_links(net["links"]),
                        iplink.parse_bridge_vlans(net["port_vlans"]))

    def file(self, path: str) -> str | None:
        return self.recorded.files.get(os.path.normpath(path))

    def tail(self, path: str, lines: int) -> str | None:
        """The last ``lines`` lines of a recorded file."""
        text = self.file(path)
        return None if text is None else "".join(text.splitlines(keepends=True)[-lines:])

    def exists(self, path: str) -> bool:
        """A recorded file or path, or a folder that holds one."""
        want = os.path.normpath(path)
        known = (*self.recorded.files, *self.recorded.paths, *self.recorded.images)
        return any(k == want or k.startswith(want.rstrip("/") + "/") for k in known)

    def image(self, path: str) -> ImageInfo:
        """As :func:`kvmops.images.probe.probe` on the recorded ``qemu-img info``."""
        from kvmops.facts.images import _usable
        from kvmops.images.probe import parse_qemu_img_info

        if not path or path.startswith("-"):
            raise InvalidInput(f"bad image path {path!r}: give the path of a raw or qcow2 image file")
        text = self.recorded.images.get(os.path.normpath(path)) if path.startswith("/") else None
        if text is None:
            have = ", ".join(sorted(self.recorded.images)) or "none"
            raise NotFound(f"image {path} does not exist on {self.host.site.name} (recorded facts; its images: "
                           f"{have}): give one of these")
        info = parse_qemu_img_info(text)
        _usable(info, path)
        return info
