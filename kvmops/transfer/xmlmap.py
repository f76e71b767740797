"""A guest's domain XML mapped from one site to another (pure): disk paths to the target's VG
and LV names, bridges by VLAN (the target site's bridge of the same VLAN), the target's
emulator and domain type, and on request a new name and identity (the UUID dropped, so libvirt
makes a new one, and new MACs, chosen by kvmops for the new name as for a new guest, for a copy
that may run beside the original). Without a new identity the guest keeps its UUID and MACs:
a moved or restored guest keeps the addresses and DHCP reservations bound to them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field

from kvmops.errors import InvalidInput, NotFound
from kvmops.guests.xml import machine_family, read_domain
from kvmops.site import Site

NAMESPACES = {"qemu": "http://libvirt.org/schemas/domain/qemu/1.0"}
for _prefix, _uri in NAMESPACES.items():
    ET.register_namespace(_prefix, _uri)


@dataclass(frozen=True)
class XmlMap:
    """What changes in the XML. ``disks``: source path -> target path; ``bridges``: source
    bridge -> target bridge; ``eject``: CD-ROM sources to leave out (not on the target)."""

    name: str
    disks: Mapping[str, str]
    bridges: Mapping[str, str]
    emulator: str
    domain_type: str
    new_identity: bool = False
    eject: frozenset[str] = field(default_factory=frozenset)
    macs: tuple[str, ...] = ()  # with new_identity: the new MAC of each NIC, in order (none: libvirt's)


def vlans_of(xml: str, site: Site) -> dict[str, int]:
    """Each bridge of the guest -> its VLAN on ``site``; a bridge that is no network of the
    site cannot be mapped (refused, naming the site's bridges)."""
    out = {}
    for bridge in read_domain(xml).bridges:
        try:
            out[bridge] = site.network_by_bridge(bridge).vlan
        except NotFound as exc:
            raise InvalidInput(f"the guest's NIC is on bridge {bridge}, which is no network of site {site.name}, "
                               f"so kvmops cannot tell its VLAN on the other host: {exc}") from None
    return out


def bridge_map(vlans: Mapping[str, int], target: Site) -> dict[str, str]:
    """Source bridge -> the target site's bridge of the same VLAN."""
    out = {}
    for bridge, vlan in vlans.items():
        try:
            out[bridge] = target.network(vlan).bridge
        except NotFound as exc:
            raise InvalidInput(f"bridge {bridge} carries VLAN {vlan}, which is no network of the target site "
                               f"{target.name}: add it to the target's site file ({exc})") from None
    return out


def map_xml(xml: str, m: XmlMap) -> str:
    """The XML with every mapping applied; refuses a disk it has no mapping for."""
    try:
        root = ET.fromstring(xml)  # noqa: S314 (libvirt's own XML of the guest)
    except ET.ParseError as exc:
        raise InvalidInput(f"not a domain XML: {exc}") from None
    root.set("type", m.domain_type)
    _set_text(root, "name", m.name)
    if m.new_identity:
        for uuid in root.findall("uuid"):
            root.remove(uuid)
    _os_machine(root)
    devices = root.find("devices")
    if devices is not None:
        _devices(devices, m)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def _set_text(root: ET.Element, tag: str, text: str) -> None:
    el = root.find(tag)
    if el is None:
        el = ET.SubElement(root, tag)
    el.text = text


def _os_machine(root: ET.Element) -> None:
    """``pc-q35-8.2`` (the source QEMU's expansion) -> ``q35``: the target's QEMU picks its own."""
    t = root.find("os/type")
    machine = t.get("machine") if t is not None else None
    if t is not None and machine:
        t.set("machine", machine_family(machine) or machine)


def _devices(devices: ET.Element, m: XmlMap) -> None:
    _set_text(devices, "emulator", m.emulator)
    for disk in devices.iterfind("disk"):
        _disk(disk, m)
    for i, nic in enumerate(devices.iterfind("interface")):
        src = nic.find("source")
        if nic.get("type") == "bridge" and src is not None:
            old = src.get("bridge", "")
            if old not in m.bridges:
                raise InvalidInput(f"no target bridge for the guest's bridge {old!r}")
            src.set("bridge", m.bridges[old])
        mac = nic.find("mac")
        if m.new_identity and mac is not None:
            nic.remove(mac)
        if m.new_identity and i < len(m.macs):
            nic.insert(0, ET.Element("mac", {"address": m.macs[i]}))


def nic_count(xml: str) -> int:
    """How many NICs a domain XML has (each needs a MAC)."""
    try:
        root = ET.fromstring(xml)  # noqa: S314 (bounded by the caller's policy; no external entities)
    except ET.ParseError as exc:
        raise InvalidInput(f"not a domain XML: {exc}") from None
    return len(root.findall("devices/interface"))


def _disk(disk: ET.Element, m: XmlMap) -> None:
    src = disk.find("source")
    if src is None:
        return
    if disk.get("device") == "cdrom":
        if src.get("file") in m.eject:
            disk.remove(src)
        return
    if disk.get("device", "disk") != "disk":
        return
    path = src.get("dev") or src.get("file") or ""
    if path not in m.disks:
        raise InvalidInput(f"the guest's disk {path} has no place on the target (only LVs of the site's VG move)")
    src.attrib.pop("file", None)
    src.set("dev", m.disks[path])
    disk.set("type", "block")


def media_of(xml: str) -> tuple[str, ...]:
    """The files a guest needs besides its disks: CD-ROM image, kernel, initrd."""
    d = read_domain(xml)
    return tuple(p for p in (d.cdrom, d.kernel, d.initrd) if p)
