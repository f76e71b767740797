"""The guest domain XML: rendered from a :class:`GuestSpec`, read back into facts (pure).

The renderer follows the guide's template (``kvm-guest-template.xml``, sec. 3.2): q35,
host-model CPU, UTC clock with rtc/pit/hpet timers, raw virtio system disk with cache none
and io native, a read-only SATA CD-ROM, a serial pty console, bridge NICs with virtio, the
QEMU guest agent channel, a PS/2 mouse, a virtio balloon and a virtio RNG from /dev/urandom.
PCI addresses are left to libvirt. ElementTree builds it; no string templates.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from kvmops.errors import InvalidInput
from kvmops.guests.spec import GuestSpec
from kvmops.site import Site

AGENT_CHANNEL = "org.qemu.guest_agent.0"
ROOT_PORTS = 7
USB_PORTS = 15


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def render_domain_xml(site: Site, spec: GuestSpec) -> str:
    """The domain XML for ``virsh define``, equivalent to the guide's template."""
    dom = ET.Element("domain", {"type": site.domain_type})
    _sub(dom, "name", spec.name)
    _sub(dom, "memory", str(spec.memory_kib), unit="KiB")
    _sub(dom, "currentMemory", str(spec.memory_kib), unit="KiB")
    _sub(dom, "vcpu", str(spec.vcpus), placement="static")
    _os(dom, spec)
    features = _sub(dom, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    _sub(dom, "cpu", mode="host-model", check="partial")
    clock = _sub(dom, "clock", offset="utc")
    _sub(clock, "timer", name="rtc", tickpolicy="catchup")
    _sub(clock, "timer", name="pit", tickpolicy="delay")
    _sub(clock, "timer", name="hpet", present="no")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")
    pm = _sub(dom, "pm")
    _sub(pm, "suspend-to-mem", enabled="no")
    _sub(pm, "suspend-to-disk", enabled="no")
    _devices(_sub(dom, "devices"), site, spec)
    ET.indent(dom, space="  ")
    return ET.tostring(dom, encoding="unicode") + "\n"


def with_uuid(xml: str, uuid: str) -> str:
    """The XML with ``<uuid>`` set after ``<name>``: libvirt replaces a definition only when
    the UUID matches (else "domain ... already exists with uuid ...")."""
    root = ET.fromstring(xml)  # noqa: S314 (kvmops' own XML)
    for old in root.findall("uuid"):
        root.remove(old)
    el = ET.Element("uuid")
    el.text = uuid
    names = [c.tag for c in root]
    root.insert(names.index("name") + 1 if "name" in names else 0, el)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def _parse(xml: str) -> ET.Element:
    """A domain XML as a tree that keeps its comments (the guide's template has a header)."""
    # The XML comes from libvirt, kvmops or the operator's kept file; expat resolves no external entities.
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))  # noqa: S314
    try:
        root = ET.fromstring(xml, parser=parser)  # noqa: S314
    except ET.ParseError as exc:
        raise InvalidInput(f"not a domain XML: {exc}") from None
    if root.tag != "domain":
        raise InvalidInput(f"not a domain XML: the root element is <{root.tag}>")
    return root


def _text_of(root: ET.Element, original: str) -> str:
    """The tree as text, after what stood before the root element (declaration, comments)."""
    start = original.find("<domain")
    return original[:max(start, 0)] + ET.tostring(root, encoding="unicode").rstrip("\n") + "\n"


def with_disk_source(xml: str, old: str, new: str) -> str:
    """The domain XML with each disk whose source is ``old`` (``/dev/rl_build/vmtest1``)
    pointing at ``new`` instead; everything else (UUID, MACs, comments) stays."""
    root = _parse(xml)
    for disk in root.iterfind("devices/disk"):
        src = disk.find("source")
        for attr in ("dev", "file"):
            if src is not None and src.get(attr) == old:
                src.set(attr, new)
    return _text_of(root, xml)


def _cdroms_with(root: ET.Element, path: str) -> list[ET.Element]:
    return [d for d in root.iterfind("devices/disk")
            if d.get("device") == "cdrom" and (src := d.find("source")) is not None and src.get("file") == path]


def without_cdrom_media(xml: str, path: str) -> str:
    """The domain XML with the CD-ROM drive that holds ``path`` left empty (the drive stays,
    as in the guide's template)."""
    root = _parse(xml)
    for cd in _cdroms_with(root, path):
        src = cd.find("source")
        assert src is not None
        cd.remove(src)
    return _text_of(root, xml)


def ejected_drive(xml: str, path: str) -> str | None:
    """The ``<disk>`` of the drive holding ``path``, without its medium (for a live eject);
    None when no drive holds it."""
    found = _cdroms_with(_parse(xml), path)
    if not found:
        return None
    drive = found[0]
    src = drive.find("source")
    assert src is not None
    drive.remove(src)
    return ET.tostring(drive, encoding="unicode").strip()


def _os(dom: ET.Element, spec: GuestSpec) -> None:
    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine="q35")
    if spec.kernel:
        _sub(os_el, "kernel", spec.kernel)
        if spec.initrd:
            _sub(os_el, "initrd", spec.initrd)
        if spec.cmdline:
            _sub(os_el, "cmdline", spec.cmdline)
    _sub(os_el, "boot", dev="hd")


def disk_source(site: Site, lv: str) -> str:
    """``/dev/<vg>/<lv>``: the block device of a guest LV."""
    return f"/dev/{site.vg}/{lv}"


def _devices(dev: ET.Element, site: Site, spec: GuestSpec) -> None:
    _sub(dev, "emulator", site.emulator)
    system = spec.disk_path or disk_source(site, spec.system_lv(site))
    _disk(dev, system, "vda")
    for i, lv in enumerate(spec.data_lvs, 1):
        _disk(dev, disk_source(site, lv), _vd(i))
    _cdrom(dev, spec.cdrom)
    _controllers(dev)
    for i, bridge in enumerate(spec.bridges):
        nic = _sub(dev, "interface", type="bridge")
        if spec.macs:
            _sub(nic, "mac", address=spec.macs[i])
        _sub(nic, "source", bridge=bridge)
        _sub(nic, "model", type="virtio")
    serial = _sub(dev, "serial", type="pty")
    if spec.serial_log:
        _sub(serial, "log", file=spec.serial_log, append="off")
    target = _sub(serial, "target", type="isa-serial", port="0")
    _sub(target, "model", name="isa-serial")
    console = _sub(dev, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    channel = _sub(dev, "channel", type="unix")
    _sub(channel, "target", type="virtio", name=AGENT_CHANNEL)
    _sub(dev, "input", type="mouse", bus="ps2")
    _sub(dev, "memballoon", model="virtio")
    rng = _sub(dev, "rng", model="virtio")
    _sub(rng, "backend", "/dev/urandom", model="random")


def _vd(index: int) -> str:
    if index >= 26:
        raise InvalidInput("at most 25 data disks (vdb ... vdz)")
    return "vd" + chr(ord("a") + index)


def _disk(dev: ET.Element, path: str, target: str) -> None:
    block = path.startswith("/dev/")
    disk = _sub(dev, "disk", type="block" if block else "file", device="disk")
    _sub(disk, "driver", name="qemu", type="raw", cache="none", io="native")
    _sub(disk, "source", **({"dev": path} if block else {"file": path}))
    _sub(disk, "target", dev=target, bus="virtio")


def _cdrom(dev: ET.Element, image: str | None) -> None:
    cd = _sub(dev, "disk", type="file", device="cdrom")
    _sub(cd, "driver", name="qemu", type="raw")
    if image:
        _sub(cd, "source", file=image)
    _sub(cd, "target", dev="sda", bus="sata")
    _sub(cd, "readonly")


def _controllers(dev: ET.Element) -> None:
    _sub(dev, "controller", type="usb", index="0", model="qemu-xhci", ports=str(USB_PORTS))
    _sub(dev, "controller", type="sata", index="0")
    _sub(dev, "controller", type="pci", index="0", model="pcie-root")
    for i in range(1, ROOT_PORTS + 1):
        _sub(dev, "controller", type="pci", index=str(i), model="pcie-root-port")
    _sub(dev, "controller", type="virtio-serial", index="0")


# -- readers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disk:
    """A disk of a domain: target (vda), source path, device kind (disk/cdrom)."""

    target: str
    source: str | None
    device: str = "disk"


@dataclass(frozen=True)
class DomainFacts:
    """What kvmops reads back from any domain XML (its own or libvirt's normalized form)."""

    name: str
    domain_type: str
    memory_kib: int
    vcpus: int
    bridges: tuple[str, ...]
    disks: tuple[Disk, ...]
    cdrom: str | None
    emulator: str | None = None
    machine: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    serial_log: str | None = None
    uuid: str | None = None
    macs: tuple[str, ...] = ()  # of the bridge NICs, in order ("" where a NIC has none)

    @property
    def disk_sources(self) -> tuple[str, ...]:
        """The source paths of the hard disks (not the CD-ROM), in target order."""
        return tuple(d.source for d in self.disks if d.device == "disk" and d.source)

    def lines(self) -> list[str]:
        """One ``key: value`` line per fact, for a readable diff of two definitions."""
        out = [f"name: {self.name}", f"type: {self.domain_type}", f"machine: {machine_family(self.machine)}",
               f"emulator: {self.emulator}", f"memory: {self.memory_kib} KiB", f"vcpus: {self.vcpus}"]
        out += [f"disk {d.target}: {d.source}" for d in self.disks if d.device == "disk"]
        out.append(f"cdrom: {self.cdrom or '(empty)'}")
        out += [f"bridge: {b}" for b in self.bridges]
        out += [f"mac: {m}" for m in self.macs if m]
        for key in ("kernel", "initrd", "cmdline", "serial_log"):
            value = getattr(self, key)
            if value:
                out.append(f"{key}: {value}")
        return out


_UNIT_KIB = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024, "m": 1024,
             "mib": 1024, "mb": 1000**2 / 1024, "g": 1024**2, "gib": 1024**2, "gb": 1000**3 / 1024}


def _memory(root: ET.Element) -> int:
    el = root.find("memory")
    if el is None or not (el.text or "").strip():
        return 0
    unit = el.get("unit", "KiB").lower()
    return int(int(el.text.strip()) * _UNIT_KIB.get(unit, 1))  # type: ignore[union-attr]


def _text(root: ET.Element, path: str) -> str | None:
    el = root.find(path)
    return el.text.strip() if el is not None and el.text else None


def _source(disk: ET.Element) -> str | None:
    src = disk.find("source")
    if src is None:
        return None
    return src.get("dev") or src.get("file") or src.get("name")


def read_domain(xml: str) -> DomainFacts:
    """Facts of a domain XML: name, memory, vCPUs, bridges, disk sources, CD-ROM, boot."""
    try:
        # The XML comes from libvirt or from kvmops itself; expat resolves no external entities.
        root = ET.fromstring(xml)  # noqa: S314
    except ET.ParseError as exc:
        raise InvalidInput(f"not a domain XML: {exc}") from None
    if root.tag != "domain":
        raise InvalidInput(f"not a domain XML: the root element is <{root.tag}>")
    disks, cdrom = [], None
    for d in root.iterfind("devices/disk"):
        target = d.find("target")
        disk = Disk(target.get("dev", "") if target is not None else "", _source(d), d.get("device", "disk"))
        disks.append(disk)
        if disk.device == "cdrom" and cdrom is None:
            cdrom = disk.source
    nics = [(src.get("bridge", ""), _mac(nic)) for nic in root.iterfind("devices/interface")
            if nic.get("type") == "bridge" and (src := nic.find("source")) is not None]
    log = root.find("devices/serial/log")
    return DomainFacts(
        name=_text(root, "name") or "",
        domain_type=root.get("type", ""),
        memory_kib=_memory(root),
        vcpus=int(_text(root, "vcpu") or 0),
        bridges=tuple(b for b, _m in nics),
        disks=tuple(disks),
        cdrom=cdrom,
        emulator=_text(root, "devices/emulator"),
        machine=(t.get("machine") if (t := root.find("os/type")) is not None else None),
        kernel=_text(root, "os/kernel"),
        initrd=_text(root, "os/initrd"),
        cmdline=_text(root, "os/cmdline"),
        serial_log=log.get("file") if log is not None else None,
        uuid=_text(root, "uuid"),
        macs=tuple(m for _b, m in nics),
    )


def _mac(nic: ET.Element) -> str:
    el = nic.find("mac")
    return (el.get("address") or "").strip().lower() if el is not None else ""


def macs_of(xml: str) -> tuple[str, ...]:
    """Every MAC address a domain XML gives its NICs (of any type), lower case."""
    try:
        root = ET.fromstring(xml)  # noqa: S314 (libvirt's or kvmops' XML; expat resolves no entities)
    except ET.ParseError:
        return ()
    return tuple(m for nic in root.iterfind("devices/interface") if (m := _mac(nic)))


def machine_family(machine: str | None) -> str | None:
    """``pc-q35-7.2`` (libvirt's expansion) and ``q35`` are the same machine type here."""
    if machine and "q35" in machine:
        return "q35"
    if machine and (machine == "pc" or machine.startswith("pc-i440fx")):
        return "pc"
    return machine
