"""The domain XML policy, as the tests read it (an oracle independent of kvmops.safety).

Written from the rule text (issue 20 and the policy's description), not from kvmops' code. A
definition hands the guest nothing of the host but what the rules allow:

- every ``<disk>`` is a disk or a CD-ROM (never ``lun``, ``floppy``: pass-through); a disk is
  a block device that is an LV of the site's VG named for the guest (``<prefix><guest>``, or
  ``<prefix><guest>-...`` / ``_...``); a CD-ROM is empty or an ISO file in the seed folder;
- every ``<interface>`` is a bridge of the site's networks;
- serial ports and consoles are ptys; channels are ptys, ``spicevmc`` or a ``unix`` socket
  that libvirt places itself (no path, or libvirt's own folder); a serial log lies in the
  boot folder;
- none of ``hostdev``, ``filesystem``, ``redirdev``, ``smartcard``, ``shmem``, ``parallel``,
  ``seclabel``, nor any element of another namespace (``qemu:commandline``) outside
  ``<metadata>``, at any depth;
- only the ordinary devices (those of the template, controllers, emulated input, graphics,
  video, balloon, watchdog, panic, sound, an RNG from ``/dev/urandom`` or ``/dev/random``);
- the domain is of type ``kvm`` or ``qemu`` and named for the guest;
- **no host path anywhere** but where the rules allow one: the site's emulator; kernel,
  initrd and device tree from the boot folder; firmware (and a firmware store's template)
  from ``/usr/share``, the firmware store in libvirt's nvram folder; a CD-ROM from the seed
  folder; a serial log in the boot folder; a pty's ``/dev/pts/N``; the agent's socket in
  libvirt's folder; the RNG's source; the guest's own LVs as disks. Any other attribute or
  text that is an absolute path (a file read into the firmware, a ROM, fw_cfg, an ACPI table,
  a host device, a socket, a log) is refused, wherever it stands. Every ``<devices>`` and
  ``<os>`` block counts (libvirt reads all of them); of a repeated ``<kernel>``, ``<initrd>``
  or ``<dtb>`` within one ``<os>``, libvirt keeps the first and drops the others (checked
  with its test driver), so only the first counts.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from functools import lru_cache

from kvmops.site import Site

MAX_BYTES = 1 << 20
TOP = frozenset({"name", "uuid", "genid", "title", "description", "metadata", "memory", "currentMemory",
                 "maxMemory", "vcpu", "vcpus", "iothreads", "cputune", "memtune", "numatune", "resource", "os",
                 "features", "cpu", "clock", "on_poweroff", "on_reboot", "on_crash", "on_lockfailure", "pm",
                 "devices", "memoryBacking", "blkiotune", "sysinfo", "perf"})
DEVICES = frozenset({"emulator", "disk", "controller", "interface", "serial", "console", "channel", "input",
                     "graphics", "video", "memballoon", "rng", "watchdog", "panic", "sound", "audio"})
NEVER = frozenset({"hostdev", "filesystem", "redirdev", "smartcard", "shmem", "parallel", "seclabel"})
FREE_TEXT = frozenset({"title", "description", "cmdline"})
INPUTS = ("mouse", "keyboard", "tablet")
LIBVIRT_DIRS = ("/var/lib/libvirt/qemu", "/run/libvirt/qemu")
FIRMWARE = "/usr/share"
NVRAM = "/var/lib/libvirt/qemu/nvram"
RANDOM = ("/dev/urandom", "/dev/random")


def violations(xml: str, site: Site, guest: str) -> list[str]:
    """What ``xml`` hands the guest that the rules forbid; [] when it passes."""
    return list(_violations(xml, site, guest))


@lru_cache(maxsize=8192)
def _violations(xml: str, site: Site, guest: str) -> tuple[str, ...]:
    if len(xml.encode()) > MAX_BYTES:
        return ("too large for a domain XML",)
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        return (f"does not parse: {exc}",)
    if root.tag != "domain":
        return (f"<{root.tag}> is no domain",)
    out: list[str] = []
    if root.get("type") not in ("kvm", "qemu"):
        out.append(f"domain type {root.get('type')!r}")
    if [n.text for n in root.findall("name")] != [guest]:
        out.append(f"names {[n.text for n in root.findall('name')]}, not {guest!r}")
    allowed = _allowed_paths(root, site, guest, out)
    _walk(root, (), allowed, out)
    return tuple(out)


def _walk(el: ET.Element, path: tuple[str, ...], allowed: set[tuple[int, str]], out: list[str]) -> None:
    here = (*path, el.tag)
    if el.tag == "metadata" and len(path) == 1:
        return  # libvirt keeps it for applications and interprets none of it
    if el.tag.startswith("{"):
        out.append(f"{'/'.join(here)}: an element of another namespace")
    elif el.tag in NEVER:
        out.append(f"{'/'.join(here)}: never allowed")
    elif len(here) == 2 and el.tag not in TOP:
        out.append(f"<{el.tag}> is no element a definition may have")
    elif len(here) == 3 and path[-1] == "devices" and el.tag not in DEVICES:
        out.append(f"<devices><{el.tag}> is no device a definition may have")
    for name, value in el.attrib.items():
        if _host_path(value) and (id(el), "@" + name) not in allowed:
            out.append(f"{'/'.join(here)}@{name}={value!r}: a host path")
    text = (el.text or "").strip()
    if _host_path(text) and el.tag not in FREE_TEXT and (id(el), "text") not in allowed:
        out.append(f"{'/'.join(here)}={text!r}: a host path")
    for child in el:
        _walk(child, here, allowed, out)


def _host_path(value: str) -> bool:
    return value.startswith("/")


def _under(path: str, folder: str) -> bool:
    return bool(folder) and path.startswith("/") and \
        os.path.normpath(path).startswith(os.path.normpath(folder).rstrip("/") + "/")


def _allowed_paths(root: ET.Element, site: Site, guest: str, out: list[str]) -> set[tuple[int, str]]:
    """Checks each device and boot setting; returns the (element, attribute) places whose host
    path the rules allow."""
    ok: set[tuple[int, str]] = set()
    for os_el in root.findall("os"):
        seen: set[str] = set()
        for child in os_el:
            if child.tag in ("kernel", "initrd", "dtb") and child.tag in seen:
                ok.add((id(child), "text"))  # libvirt reads the first of each and drops the others
            seen.add(child.tag)
            _os_child(child, site, ok)
    for devices in root.findall("devices"):
        for dev in devices:
            _device(dev, site, guest, out, ok)
    return ok


def _os_child(child: ET.Element, site: Site, ok: set[tuple[int, str]]) -> None:
    text = (child.text or "").strip()
    boot = child.tag in ("kernel", "initrd", "dtb") and _under(text, site.boot_dir)
    if boot or (child.tag == "loader" and _under(text, FIRMWARE)):
        ok.add((id(child), "text"))
    elif child.tag == "nvram":
        if _under(text, NVRAM):
            ok.add((id(child), "text"))
        if _under(child.get("template", ""), FIRMWARE):
            ok.add((id(child), "@template"))


def _device(dev: ET.Element, site: Site, guest: str, out: list[str], ok: set[tuple[int, str]]) -> None:
    tag = dev.tag
    if tag == "emulator" and (dev.text or "").strip() == site.emulator:
        ok.add((id(dev), "text"))
    elif tag == "disk":
        _disk(dev, site, guest, out, ok)
    elif tag == "interface":
        bridges = {n.bridge for n in site.networks}
        src = dev.find("source")
        if dev.get("type") != "bridge" or src is None or src.get("bridge") not in bridges:
            out.append(f"interface {dev.get('type')!r} on {src.attrib if src is not None else None}: "
                       "not a bridge of the site's networks")
    elif tag in ("serial", "console", "channel"):
        _char(dev, site, out, ok)
    elif tag == "input" and dev.get("type") not in INPUTS:
        out.append(f"input {dev.get('type')!r}: not an emulated mouse, keyboard or tablet")
    elif tag == "rng":
        backend = dev.find("backend")
        if backend is not None and backend.get("model") == "random" and (backend.text or "").strip() in RANDOM:
            ok.add((id(backend), "text"))
        else:
            out.append("rng: not random from /dev/urandom or /dev/random")


def _disk(disk: ET.Element, site: Site, guest: str, out: list[str], ok: set[tuple[int, str]]) -> None:
    device, kind, src = disk.get("device", "disk"), disk.get("type"), disk.find("source")
    if device == "cdrom":
        if src is not None and src.attrib:
            if kind == "file" and _under(src.get("file", ""), site.seed_dir) and len(src.attrib) == 1:
                ok.add((id(src), "@file"))
            else:
                out.append(f"cdrom {src.attrib}: not an ISO in the seed folder")
        return
    if device != "disk":
        out.append(f"disk device {device!r}: pass-through")
        return
    dev = src.get("dev", "") if src is not None else ""
    if kind != "block" or not _own_lv(dev, site, guest):
        out.append(f"disk {kind!r} {src.attrib if src is not None else None}: not an LV of the site's VG "
                   f"named for {guest}")
    elif src is not None:
        ok.add((id(src), "@dev"))


def _own_lv(dev: str, site: Site, guest: str) -> bool:
    """``/dev/VG/LV`` or ``/dev/mapper/VG-LV`` (dashes doubled) of the site's VG, LV named for the guest."""
    own = site.lv_prefix + guest
    names = (own, *(f"{own}{sep}" for sep in "-_"))
    if dev.startswith(f"/dev/{site.vg}/"):
        lv = dev[len(f"/dev/{site.vg}/"):]
    else:
        mapper = f"/dev/mapper/{site.vg.replace('-', '--')}-"
        if not dev.startswith(mapper):
            return False
        rest = dev[len(mapper):]
        if "-" in rest.replace("--", ""):
            return False  # a single dash left: the VG's name was not all of the prefix
        lv = rest.replace("--", "-")
    return "/" not in lv and (lv == own or (lv.startswith(names[1:]) and len(lv) > len(own) + 1))


def _char(dev: ET.Element, site: Site, out: list[str], ok: set[tuple[int, str]]) -> None:
    tag, kind = dev.tag, dev.get("type")
    kinds = ("pty",) if tag in ("serial", "console") else ("pty", "unix", "spicevmc")
    if kind not in kinds:
        out.append(f"{tag} {kind!r}: backed by a host file or socket")
        return
    src = dev.find("source")
    path = src.get("path", "") if src is not None else ""
    if path and ((kind == "pty" and _under(path, "/dev/pts")) or
                 (kind == "unix" and any(_under(path, d) for d in LIBVIRT_DIRS))):
        ok.add((id(src), "@path"))
    log = dev.find("log")
    if log is not None and _under(log.get("file", ""), site.boot_dir):
        ok.add((id(log), "@file"))
