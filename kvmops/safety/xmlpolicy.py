"""The domain XML policy: what a definition may ask of the host (pure).

A domain XML can hand a guest almost anything the host has: any block device, a host folder,
a PCI device, the host's files as serial ports, QEMU's command line. A definition that kvmops
makes, moves or restores (from a backup that may come from a less trusted machine) passes
this policy first, element by element; whatever it refuses is named.

Allowed:

- disks: block devices that are LVs of the site's VG named for the guest (their name starts
  with ``<prefix><guest>``: ``vmtest1``, ``vmtest1-data``, the guide's ``vminfluxdb`` for
  ``influx``; another guest's disk is refused by the gate's own rule), as ``disk`` (never
  ``lun``); CD-ROMs that are
  empty or an ISO in the site's seed folder; file disks only in the site's ``file_disk_dir``
  when it names one (test hosts without device-mapper);
- interfaces: ``type="bridge"`` on a bridge of the site's networks, no ``<script>``,
  ``<backend>`` or ``<ip>``;
- serial ports and consoles of type ``pty`` (a ``<log>`` only in the site's boot folder), the
  guest agent's ``unix`` channel (no source, or libvirt's own folder), ``spicevmc``;
- kernel and initrd only from the site's boot folder; firmware only from ``/usr/share``;
- the devices of the guide's template and the ordinary emulated ones (controllers, input,
  graphics, video, balloon, watchdog, panic, sound), an RNG from ``/dev/urandom`` or
  ``/dev/random``.

(A site whose libvirt is the test driver, the demo, also has domains of type ``test``.)

Refused whatever else they say: ``hostdev`` (also as an interface), ``filesystem``, ``lun`` or
``scsi`` pass-through, ``redirdev``, ``smartcard``, ``shmem``, ``tpm``, ``audio``, any element
of another XML namespace (``qemu:commandline``) outside ``<metadata>``, any ``seclabel``, a
top-level element twice (libvirt reads a second ``<devices>`` or ``<os>`` too), domain types
other than ``kvm`` and ``qemu``, and any host path (an attribute or a text starting with
``/``) outside the places listed above: a ROM file, an ACPI table, an fw_cfg file, an evdev
input, an nvram template.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

from kvmops.lvm.paths import lv_path
from kvmops.site import Site

MAX_XML = 1 << 20  # bytes: a domain XML is a few KiB
DOMAIN_TYPES = ("kvm", "qemu")
TOP = frozenset({"name", "uuid", "genid", "title", "description", "metadata", "memory", "currentMemory",
                 "maxMemory", "vcpu", "vcpus", "iothreads", "cputune", "memtune", "numatune", "resource", "os",
                 "features", "cpu", "clock", "on_poweroff", "on_reboot", "on_crash", "on_lockfailure", "pm",
                 "devices", "memoryBacking", "blkiotune", "sysinfo", "idmap", "perf"})
DEVICES = frozenset({"emulator", "disk", "controller", "interface", "serial", "console", "channel", "input",
                     "graphics", "video", "memballoon", "rng", "watchdog", "panic", "sound"})
NEVER = {
    "hostdev": "hands a host PCI/USB/SCSI device to the guest",
    "filesystem": "shares a host folder with the guest",
    "redirdev": "redirects a USB device over a host channel",
    "smartcard": "passes a host smartcard through",
    "shmem": "shares host memory",
    "seclabel": "overrides the security label (e.g. runs QEMU as root)",
    "parallel": "backs a parallel port by a host file or socket",
    "tpm": "hands the host's TPM (or an emulator's state) to the guest",
    "audio": "backs the guest's sound by a host file or server (only type 'none' is allowed)",
}
CHAR_TYPES = {"serial": ("pty",), "console": ("pty",), "channel": ("unix", "spicevmc")}
AGENT_DIRS = ("/var/lib/libvirt/qemu/", "/run/libvirt/qemu/")
FIRMWARE_DIR = "/usr/share/"
NVRAM_DIR = "/var/lib/libvirt/qemu/nvram/"


def refusals(xml: str, site: Site, guest: str) -> list[str]:
    """Every element of ``xml`` the policy refuses, each named with why; [] when it passes."""
    if len(xml.encode()) > MAX_XML:
        return [f"the domain XML is {len(xml.encode())} bytes: more than {MAX_XML} is no definition"]
    try:
        root = ET.fromstring(xml)  # noqa: S314 - bounded above; ElementTree expands no external entities
    except ET.ParseError as exc:
        return [f"the domain XML does not parse: {exc}"]
    out: list[str] = []
    _domain(root, site, guest, out)
    _anywhere(root, out)
    _host_paths(root, site, out)
    return out


def _domain(root: ET.Element, site: Site, guest: str, out: list[str]) -> None:
    if root.tag != "domain":
        out.append(f"<{root.tag}> is no <domain>")
        return
    types = (*DOMAIN_TYPES, "test") if site.libvirt_uri.startswith("test:") else DOMAIN_TYPES
    if root.get("type") not in types:
        out.append(f"<domain type={root.get('type')!r}>: only {' or '.join(types)}")
    name = (root.findtext("name") or "").strip()
    if name != guest:
        out.append(f"<name>{name}</name>: the definition must name the guest {guest!r}")
    for child in root:
        if _plain(child.tag) and child.tag not in TOP and child.tag not in NEVER:
            out.append(f"<{child.tag}>: not an element kvmops lets a definition have")
    for tag in sorted({c.tag for c in root if _plain(c.tag)}):
        if len(root.findall(tag)) > 1:
            out.append(f"<{tag}> twice: libvirt reads every one of them; one is allowed")
    _os(root.find("os"), site, out)
    _backing(root.find("memoryBacking"), out)
    devices = root.find("devices")
    for dev in (devices if devices is not None else ()):
        _device(dev, site, guest, out)


def _plain(tag: str) -> bool:
    return not tag.startswith("{")


def _silent_audio(el: ET.Element) -> bool:
    """``<audio id='1' type='none'/>``: no sound backend at all, which libvirt (>= 7.2) writes
    into a definition by itself; it touches nothing on the host."""
    return el.tag == "audio" and el.get("type") == "none" and len(el) == 0 and set(el.attrib) <= {"id", "type"}


def _anywhere(root: ET.Element, out: list[str]) -> None:
    """Forbidden elements at any depth, and foreign namespaces outside <metadata>."""
    metadata = root.find("metadata")
    inside = set(metadata.iter()) if metadata is not None else set()
    for el in root.iter():
        if el in inside:
            continue
        if not _plain(el.tag):
            out.append(f"<{el.tag}>: an element of another XML namespace (e.g. qemu:commandline) is never allowed")
        elif el.tag in NEVER and not _silent_audio(el):
            out.append(f"<{el.tag}>: refused, it {NEVER[el.tag]}")
        elif el.tag == "interface" and el.get("type") == "hostdev":
            out.append("<interface type='hostdev'>: refused, it hands a host device to the guest")


def _os(os_el: ET.Element | None, site: Site, out: list[str]) -> None:
    if os_el is None:
        return
    for tag in ("kernel", "initrd", "dtb"):
        path = (os_el.findtext(tag) or "").strip()
        if path and not _under(path, site.boot_dir):
            out.append(f"<os><{tag}>{path}</{tag}>: only from the site's boot folder {site.boot_dir}")
    loader = (os_el.findtext("loader") or "").strip()
    if loader and not _under(loader, FIRMWARE_DIR):
        out.append(f"<os><loader>{loader}</loader>: firmware only from {FIRMWARE_DIR}")
    nvram = os_el.find("nvram")
    if nvram is not None and (nvram.text or "").strip() and not _under(nvram.text or "", NVRAM_DIR):
        out.append(f"<os><nvram>{nvram.text}</nvram>: only in {NVRAM_DIR}")
    if nvram is not None and nvram.find("source") is not None:
        out.append("<os><nvram><source>: a network or file source for the firmware's store is refused")


def _backing(mb: ET.Element | None, out: list[str]) -> None:
    src = mb.find("source") if mb is not None else None
    if src is not None and src.get("type") == "file":
        out.append("<memoryBacking><source type='file'>: guest memory in a host file is refused")


def _device(dev: ET.Element, site: Site, guest: str, out: list[str]) -> None:
    tag = dev.tag
    if not _plain(tag) or tag in NEVER:
        return  # named by _anywhere
    if tag not in DEVICES:
        out.append(f"<{tag}>: not a device kvmops lets a definition have")
    elif tag == "disk":
        _disk(dev, site, guest, out)
    elif tag == "interface":
        _interface(dev, site, out)
    elif tag in CHAR_TYPES:
        _char(dev, site, out)
    elif tag == "rng":
        backend = dev.find("backend")
        if backend is None or backend.get("model") != "random" or \
                (backend.text or "").strip() not in ("/dev/urandom", "/dev/random"):
            out.append("<rng>: only a 'random' backend from /dev/urandom or /dev/random")
    elif tag == "emulator":
        path = (dev.text or "").strip()
        if path != site.emulator:
            out.append(f"<emulator>{path}</emulator>: only the site's emulator {site.emulator}")


def _disk(disk: ET.Element, site: Site, guest: str, out: list[str]) -> None:
    kind, device = disk.get("type"), disk.get("device", "disk")
    src = disk.find("source")
    target = disk.find("target")
    where = f"<disk device='{device}'> {target.get('dev') if target is not None else '(no target)'}"
    if device not in ("disk", "cdrom"):
        out.append(f"{where}: only disks and CD-ROMs, never {device!r} (SCSI pass-through)")
        return
    if disk.find("backingStore/source") is not None:
        out.append(f"{where}: a <backingStore> with a source is refused")
    if target is not None and target.get("bus") == "scsi" and disk.get("sgio"):
        out.append(f"{where}: SCSI generic I/O (sgio) is refused")
    if device == "cdrom":
        _cdrom(kind, src, site, where, out)
    elif kind == "block":
        _block(src.get("dev", "") if src is not None else "", site, guest, where, out)
    elif kind == "file" and site.file_disk_dir:
        path = src.get("file", "") if src is not None else ""
        if not _under(path, site.file_disk_dir):
            out.append(f"{where}: file {path!r}: file disks only in the site's {site.file_disk_dir}")
    else:
        out.append(f"{where}: type {kind!r}: disks are block devices, LVs of the site's VG {site.vg}")


def _cdrom(kind: str | None, src: ET.Element | None, site: Site, where: str, out: list[str]) -> None:
    if src is None or not src.attrib:
        return
    path = src.get("file", "")
    if kind != "file" or not _under(path, site.seed_dir):
        out.append(f"{where}: {dict(src.attrib)}: CD-ROMs only from the site's seed folder {site.seed_dir}")


def _block(dev: str, site: Site, guest: str, where: str, out: list[str]) -> None:
    path = lv_path(dev)
    vg, _, lv = (path or "").partition("/")
    if path is None or vg != site.vg:
        out.append(f"{where}: {dev!r} is no LV of the site's VG {site.vg}")
        return
    own = site.lv_prefix + guest
    if not lv.startswith(own):
        out.append(f"{where}: {dev!r}: a guest's disks are LVs named for it ({own}, {own}-data, ...), not {lv}")


def _interface(nic: ET.Element, site: Site, out: list[str]) -> None:
    kind = nic.get("type")
    src = nic.find("source")
    bridge = src.get("bridge", "") if src is not None else ""
    bridges = {n.bridge for n in site.networks}
    if kind != "bridge":
        out.append(f"<interface type={kind!r}>: only bridges of the site's networks ({', '.join(sorted(bridges))})")
    elif bridge not in bridges:
        out.append(f"<interface> on {bridge!r}: not a bridge of the site's networks ({', '.join(sorted(bridges))})")
    for tag in ("script", "backend", "ip", "route"):
        if nic.find(tag) is not None:
            out.append(f"<interface><{tag}>: refused (it runs or opens something on the host)")


def _char(dev: ET.Element, site: Site, out: list[str]) -> None:
    tag, kind = dev.tag, dev.get("type")
    if kind not in CHAR_TYPES[tag]:
        out.append(f"<{tag} type={kind!r}>: only {' or '.join(CHAR_TYPES[tag])} (no host files or sockets)")
        return
    src = dev.find("source")
    path = src.get("path", "") if src is not None else ""
    if kind == "pty" and path and not path.startswith("/dev/pts/"):
        out.append(f"<{tag} type='pty'><source path={path!r}>: a pty is /dev/pts/N")
    if kind == "unix" and path and not any(_under(path, d) for d in AGENT_DIRS):
        out.append(f"<{tag} type='unix'><source path={path!r}>: a socket only in libvirt's own folder")
    log = dev.find("log")
    if log is not None and not _under(log.get("file", ""), site.boot_dir):
        out.append(f"<{tag}><log file={log.get('file')!r}>: log files only in the site's {site.boot_dir}")


# Where a definition may name a host path: (element path from the domain, attribute or "" for
# its text) -> a check of the path. Any other host path anywhere (a ROM, an ACPI table, an
# fw_cfg file, an evdev input, a TPM, an audio file, an nvram template, ...) is refused.
PathRule = Callable[[str, Site], bool]
ALLOWED_PATHS: dict[tuple[str, str], PathRule] = {
    ("devices/disk/source", "dev"): lambda p, s: p.startswith("/dev/"),  # judged by _disk
    ("devices/disk/source", "file"): lambda p, s: True,  # judged by _disk
    ("os/kernel", ""): lambda p, s: _under(p, s.boot_dir),
    ("os/initrd", ""): lambda p, s: _under(p, s.boot_dir),
    ("os/dtb", ""): lambda p, s: _under(p, s.boot_dir),
    ("os/loader", ""): lambda p, s: _under(p, FIRMWARE_DIR),
    ("os/nvram", ""): lambda p, s: _under(p, NVRAM_DIR),
    ("devices/emulator", ""): lambda p, s: p == s.emulator,
    ("devices/serial/source", "path"): lambda p, s: p.startswith("/dev/pts/"),
    ("devices/console/source", "path"): lambda p, s: p.startswith("/dev/pts/"),
    ("devices/channel/source", "path"): lambda p, s: any(_under(p, d) for d in AGENT_DIRS),
    ("devices/serial/log", "file"): lambda p, s: _under(p, s.boot_dir),
    ("devices/console/log", "file"): lambda p, s: _under(p, s.boot_dir),
    ("devices/channel/log", "file"): lambda p, s: _under(p, s.boot_dir),
    ("devices/rng/backend", ""): lambda p, s: p in ("/dev/urandom", "/dev/random"),
}


def _host_paths(root: ET.Element, site: Site, out: list[str]) -> None:
    """Every host path the definition names (an attribute or a text that is an absolute path,
    outside <metadata>) must stand where :data:`ALLOWED_PATHS` allows it."""
    for where, el in _walk(root, ""):
        if where == "metadata" or where.startswith("metadata/"):
            continue
        values = [(k, v) for k, v in el.attrib.items()] + [("", (el.text or "").strip())]
        for attr, value in values:
            if not value.startswith("/"):
                continue
            rule = ALLOWED_PATHS.get((where, attr))
            if rule is None or not rule(value, site):
                named = f"<{where}{' ' + attr + '=' if attr else '>'}{value!r}"
                out.append(f"{named}: a host path the policy does not allow there")


def _walk(el: ET.Element, where: str) -> Iterator[tuple[str, ET.Element]]:
    for child in el:
        path = f"{where}/{child.tag}" if where else child.tag
        yield path, child
        yield from _walk(child, path)


def _under(path: str, folder: str) -> bool:
    """``path`` is absolute, normalised and inside ``folder`` (no ``..`` escapes)."""
    if not path.startswith("/") or not folder:
        return False
    norm = os.path.normpath(path)
    return norm.startswith(os.path.normpath(folder).rstrip("/") + "/")
