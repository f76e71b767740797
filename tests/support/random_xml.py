"""Domain XML for random definitions: clean, or hostile with a label saying what was put in.

The clean base is the template kvmops renders (:func:`kvmops.guests.xml.render_domain_xml`)
with choices a definition may make: the site's bridges, a data disk named for the guest, the
system disk by its ``/dev/mapper`` name, a NoCloud seed in the seed folder, direct kernel boot
from the boot folder, a serial log there. A hostile definition adds one or two things that
hand the guest a part of the host (each a ``HOSTILE`` kind): a host block device, a folder, a
PCI device, a host file or socket behind a serial port, console or channel, QEMU's command
line, a security label override, a NIC outside the site's bridges, boot files or a CD-ROM
from elsewhere, another guest's disk, a host LV, an LV of another VG, a file read into the
guest's firmware, ROM or fw_cfg, a second ``<devices>`` or ``<os>`` block (libvirt reads
every one of them), and more.

The labels are the ground truth for the oracle's XML policy (:mod:`tests.support.plan_safety`):
a definition with a hostile kind must be refused, a clean one passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, TypeVar

from kvmops.guests.spec import GuestSpec
from kvmops.guests.xml import render_domain_xml, with_uuid
from kvmops.site import Site

T = TypeVar("T")
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


class Chooser(Protocol):
    def pick(self, options: Sequence[T]) -> T: ...

    def maybe(self, yes: int, of: int) -> bool: ...


@dataclass(frozen=True)
class Definition:
    """A domain XML for ``virsh define`` and what it holds: ``hostile`` names every kind of
    thing in it that the XML policy must refuse (empty: a clean definition)."""

    xml: str
    hostile: tuple[str, ...] = ()
    clean: tuple[str, ...] = ()  # the clean choices it was made with


@dataclass(frozen=True)
class Where:
    """What a hostile kind needs to know: the site, the guest, another guest's name, a host
    LV and another VG."""

    site: Site
    guest: str
    other: str
    host_lv: str
    other_vg: str

    @property
    def vg(self) -> str:
        return self.site.vg


def _devices(snippet: str) -> Callable[[str, Where], str]:
    return lambda xml, w: xml.replace("</devices>", snippet.format(w=w) + "</devices>", 1)


def _os(snippet: str) -> Callable[[str, Where], str]:
    return lambda xml, w: xml.replace("</os>", snippet.format(w=w) + "</os>", 1)


def _os_first(snippet: str) -> Callable[[str, Where], str]:
    """Boot files first in ``<os>``: libvirt reads the first ``<kernel>`` and ``<initrd>``."""
    return lambda xml, w: xml.replace("</type>", "</type>" + snippet.format(w=w), 1)


def _top(snippet: str) -> Callable[[str, Where], str]:
    return lambda xml, w: xml.replace("</domain>", snippet.format(w=w) + "</domain>", 1)


def _block(dev: str) -> Callable[[str, Where], str]:
    return _devices('<disk type="block" device="disk"><driver name="qemu" type="raw"/>'
                    f'<source dev="{dev}"/><target dev="vdx" bus="virtio"/></disk>')


def _qemu(xml: str, w: Where) -> str:
    xml = xml.replace("<domain ", f'<domain xmlns:qemu="{QEMU_NS}" ', 1)
    return xml.replace("</domain>", '<qemu:commandline><qemu:arg value="-chardev"/>'
                       '<qemu:arg value="file,id=x,path=/etc/shadow"/></qemu:commandline></domain>', 1)


def _renamed(xml: str, w: Where) -> str:
    return xml.replace(f"<name>{w.guest}</name>", f"<name>{w.other}</name>", 1)


def _emulator(xml: str, w: Where) -> str:
    return xml.replace(f"<emulator>{w.site.emulator}</emulator>", "<emulator>/tmp/qemu-kvm</emulator>", 1)


GAPS = {
    "second-devices": '<devices><disk type="block" device="disk"><source dev="/dev/sda"/>'
                      '<target dev="vdy" bus="virtio"/></disk></devices>',
    "second-os": '<os><type arch="x86_64">hvm</type><kernel>/boot/vmlinuz</kernel></os>',
    "acpi-table": '<acpi><table type="slic">/etc/shadow</table></acpi>',
    "nvram-template": '<loader readonly="yes" type="pflash">/usr/share/OVMF/OVMF_CODE.fd</loader>'
                      '<nvram template="/etc/shadow">/var/lib/libvirt/qemu/nvram/guest_VARS.fd</nvram>',
    "fwcfg-file": '<sysinfo type="fwcfg"><entry name="opt/org.example/x" file="/etc/shadow"/></sysinfo>',
    "nic-rom": '<interface type="bridge"><source bridge="virbr1.2368"/><model type="virtio"/>'
               '<rom file="/etc/shadow"/></interface>',
    "input-evdev": '<input type="evdev"><source dev="/dev/input/event0"/></input>',
    "tpm-passthrough": '<tpm model="tpm-tis"><backend type="passthrough"><device path="/dev/tpm0"/></backend></tpm>',
    "audio-file": '<audio id="1" type="file" path="/etc/motd"/>',
}
"""Hostile kinds that hand the guest a host file or device in places of the XML other than
the issue names (libvirt's test driver keeps each of them, and QEMU opens the file). Each is
one fixed snippet, so that :func:`without_gaps` can take it out again."""


def _gap_place(kind: str) -> Callable[[str], Callable[[str, Where], str]]:
    if kind in ("second-devices", "second-os", "fwcfg-file"):
        return _top
    return _os if kind in ("acpi-table", "nvram-template") else _devices


def without_gaps(xml: str) -> str:
    """``xml`` without the snippets of :data:`GAPS`."""
    for snippet in GAPS.values():
        xml = xml.replace(snippet, "")
    return xml


DISK_SECLABEL = r'<source dev="\1"><seclabel model="dac" relabel="no"/></source>'
HOSTILE: dict[str, Callable[[str, Where], str]] = {
    # the list
    "lun": _devices('<disk type="block" device="lun"><source dev="/dev/sda"/><target dev="sdb" bus="scsi"/></disk>'),
    "filesystem": _devices('<filesystem type="mount" accessmode="passthrough"><source dir="/"/>'
                           '<target dir="hostroot"/></filesystem>'),
    "hostdev": _devices('<hostdev mode="subsystem" type="pci" managed="yes"><source><address domain="0x0000" '
                        'bus="0x03" slot="0x00" function="0x0"/></source></hostdev>'),
    "hostdev-nic": _devices('<interface type="hostdev" managed="yes"><source><address type="pci" domain="0x0000" '
                            'bus="0x04" slot="0x00" function="0x1"/></source></interface>'),
    "seclabel": _top('<seclabel type="static" model="dac" relabel="no"><label>+0:+0</label></seclabel>'),
    "disk-seclabel": lambda xml, w: re.sub(r'<source dev="([^"]+)" />', DISK_SECLABEL, xml, count=1),
    "qemu-commandline": _qemu,
    "serial-file": _devices('<serial type="file"><source path="/etc/shadow"/><target port="1"/></serial>'),
    "serial-tcp": _devices('<serial type="tcp"><source mode="bind" host="0.0.0.0" service="2445"/>'
                           '<protocol type="raw"/><target port="2"/></serial>'),
    "console-socket": _devices('<console type="unix"><source mode="bind" path="/root/.ssh/authorized_keys"/>'
                               '<target type="virtio" port="1"/></console>'),
    "channel-file": _devices('<channel type="file"><source path="/etc/crontab"/>'
                             '<target type="virtio" name="org.example.file"/></channel>'),
    "channel-socket": _devices('<channel type="unix"><source mode="bind" path="/run/systemd/private"/>'
                               '<target type="virtio" name="org.example.sock"/></channel>'),
    "serial-log": _devices('<serial type="pty"><log file="/etc/cron.d/guest" append="on"/><target port="3"/></serial>'),
    "nic-host-bridge": _devices('<interface type="bridge"><source bridge="br0"/><model type="virtio"/></interface>'),
    "nic-other-vlan": _devices('<interface type="bridge"><source bridge="virbr1.99"/><model type="virtio"/>'
                               '</interface>'),
    "nic-network": _devices('<interface type="network"><source network="default"/><model type="virtio"/></interface>'),
    "nic-direct": _devices('<interface type="direct"><source dev="ens802f0" mode="bridge"/><model type="virtio"/>'
                           '</interface>'),
    "nic-script": _devices('<interface type="bridge"><source bridge="{w.site.networks[0].bridge}"/>'
                           '<script path="/tmp/ifup.sh"/><model type="virtio"/></interface>'),
    "kernel": _os_first("<kernel>/boot/vmlinuz</kernel><initrd>/boot/initrd.img</initrd>"),
    "kernel-dotdot": _os_first("<kernel>{w.site.boot_dir}/../../../../boot/vmlinuz</kernel>"),
    "initrd": _os_first("<kernel>{w.site.boot_dir}/vmlinuz</kernel><initrd>/etc/shadow</initrd>"),
    "cdrom": _devices('<disk type="file" device="cdrom"><source file="/etc/shadow"/><target dev="sdb" bus="sata"/>'
                      '<readonly/></disk>'),
    "cdrom-dotdot": _devices('<disk type="file" device="cdrom">'
                             '<source file="{w.site.seed_dir}/../../../../root/x.iso"/>'
                             '<target dev="sdc" bus="sata"/><readonly/></disk>'),
    "host-block": _block("/dev/sda"),
    "other-guest-disk": lambda xml, w: _block(f"/dev/{w.vg}/{w.site.lv_prefix}{w.other}")(xml, w),
    "host-lv": lambda xml, w: _block(f"/dev/{w.vg}/{w.host_lv}")(xml, w),
    "other-vg": lambda xml, w: _block(f"/dev/{w.other_vg}/{w.site.lv_prefix}{w.guest}")(xml, w),
    "file-disk": _devices('<disk type="file" device="disk"><source file="/var/lib/libvirt/images/x.qcow2"/>'
                          '<target dev="vdw" bus="virtio"/></disk>'),
    "rng-socket": _devices('<rng model="virtio"><backend model="egd" type="unix"><source mode="connect" '
                           'path="/run/x.sock"/></backend></rng>'),
    "emulator": _emulator,
    "renamed": _renamed,
    "redirdev": _devices('<redirdev bus="usb" type="tcp"><source mode="connect" host="192.0.2.1" service="4000"/>'
                         '</redirdev>'),
    "shmem": _devices('<shmem name="x"><model type="ivshmem-plain"/><size unit="M">4</size></shmem>'),
    **{kind: _gap_place(kind)(snippet) for kind, snippet in GAPS.items()},
}
HOSTILE_KINDS = tuple(HOSTILE)
CLEAN_KINDS = ("data-disk", "mapper-disk", "seed-cdrom", "kernel-boot", "serial-log", "two-bridges", "uuid",
               "agent-socket")
"""Clean choices; ``agent-socket``: the guest agent's channel with its socket in libvirt's own folder."""


def definition(d: Chooser, site: Site, guest: str, others: Sequence[str], host_lv: str, other_vg: str) -> Definition:
    """A clean definition of ``guest`` (about half of them), else one with one or two hostile kinds."""
    clean = tuple(k for k in CLEAN_KINDS if d.maybe(1, 4))
    xml = _clean(site, guest, clean)
    if d.maybe(1, 2):
        return Definition(xml, (), clean)
    kinds = sorted({d.pick(HOSTILE_KINDS) for _ in range(d.pick((1, 1, 2)))})
    where = Where(site, guest, d.pick(others), host_lv, other_vg)
    for kind in kinds:
        made = HOSTILE[kind](xml, where)
        assert made != xml, f"the hostile kind {kind} changed nothing"
        xml = made
    return Definition(xml, tuple(kinds), clean)


@lru_cache(maxsize=4096)
def _clean(site: Site, guest: str, kinds: tuple[str, ...]) -> str:
    own = f"{site.lv_prefix}{guest}"
    bridges = tuple(n.bridge for n in site.networks[: 2 if "two-bridges" in kinds else 1])
    boot = site.boot_dir.rstrip("/")
    spec = GuestSpec(
        guest, 1048576, 1, bridges,
        disk_path=f"/dev/mapper/{site.vg.replace('-', '--')}-{own.replace('-', '--')}" if "mapper-disk" in kinds
        else None,
        data_lvs=(f"{own}-data",) if "data-disk" in kinds else (),
        cdrom=f"{site.seed_dir.rstrip('/')}/{guest}-seed.iso" if "seed-cdrom" in kinds else None,
        kernel=f"{boot}/{guest}-vmlinuz" if "kernel-boot" in kinds else None,
        initrd=f"{boot}/{guest}-initrd.img" if "kernel-boot" in kinds else None,
        serial_log=f"{boot}/{guest}-serial.log" if "serial-log" in kinds else None,
    )
    xml = render_domain_xml(site, spec)
    if "uuid" in kinds:
        xml = with_uuid(xml, "6a4c1e0e-1b2f-4c3d-9e8f-0123456789ab")
    if "agent-socket" in kinds:
        xml = xml.replace('<channel type="unix">', '<channel type="unix"><source mode="bind" '
                          f'path="/var/lib/libvirt/qemu/channel/target/{guest}.agent"/>', 1)
    return xml
