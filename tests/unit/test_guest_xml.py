"""The domain XML renderer against the facts of the guide's template, element by element,
libvirt's own schema (virt-xml-validate), and the readers on kvmops' and libvirt's XML."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kvmops.errors import InvalidInput
from kvmops.guests.spec import GuestSpec, guest_spec
from kvmops.guests.xml import (
    ejected_drive,
    read_domain,
    render_domain_xml,
    with_disk_source,
    with_uuid,
    without_cdrom_media,
)
from kvmops.site import load_site

SITE = load_site()
FIX = Path(__file__).parent.parent / "fixtures" / "libvirt"


def spec(**kw: object) -> GuestSpec:
    args: dict[str, object] = {"memory": "2g", "vcpus": 2, "vlans": (2368,)}
    args.update(kw)
    return guest_spec(SITE, "test1", **args)  # type: ignore[arg-type]


def dom(s: GuestSpec | None = None) -> ET.Element:
    return ET.fromstring(render_domain_xml(SITE, s or spec()))


def attrs(el: ET.Element | None) -> dict[str, str]:
    assert el is not None
    return dict(el.attrib)


def kids(el: ET.Element | None) -> list[ET.Element]:
    assert el is not None
    return list(el)


def test_domain_head_follows_the_template() -> None:
    d = dom()
    assert d.tag == "domain" and d.get("type") == "kvm"  # the site's domain type
    assert d.findtext("name") == "test1"
    assert (d.findtext("memory"), attrs(d.find("memory"))) == ("2097152", {"unit": "KiB"})
    assert (d.findtext("currentMemory"), attrs(d.find("currentMemory"))) == ("2097152", {"unit": "KiB"})
    assert (d.findtext("vcpu"), attrs(d.find("vcpu"))) == ("2", {"placement": "static"})


def test_os_features_cpu_clock_actions_pm() -> None:
    d = dom()
    assert attrs(d.find("os/type")) == {"arch": "x86_64", "machine": "q35"}
    assert d.findtext("os/type") == "hvm"
    assert [attrs(b) for b in d.findall("os/boot")] == [{"dev": "hd"}]
    assert d.find("os/kernel") is None
    assert [f.tag for f in kids(d.find("features"))] == ["acpi", "apic"]
    assert attrs(d.find("cpu")) == {"mode": "host-model", "check": "partial"}
    assert attrs(d.find("clock")) == {"offset": "utc"}
    assert [attrs(t) for t in d.findall("clock/timer")] == [
        {"name": "rtc", "tickpolicy": "catchup"},
        {"name": "pit", "tickpolicy": "delay"},
        {"name": "hpet", "present": "no"},
    ]
    assert (d.findtext("on_poweroff"), d.findtext("on_reboot"), d.findtext("on_crash")) == (
        "destroy", "restart", "destroy")
    assert attrs(d.find("pm/suspend-to-mem")) == {"enabled": "no"}
    assert attrs(d.find("pm/suspend-to-disk")) == {"enabled": "no"}


def test_system_disk_is_the_guest_lv_raw_virtio() -> None:
    d = dom()
    assert d.findtext("devices/emulator") == "/usr/libexec/qemu-kvm"
    (disk,) = [x for x in d.findall("devices/disk") if x.get("device") == "disk"]
    assert attrs(disk) == {"type": "block", "device": "disk"}
    assert attrs(disk.find("driver")) == {"name": "qemu", "type": "raw", "cache": "none", "io": "native"}
    assert attrs(disk.find("source")) == {"dev": "/dev/rl_build/vmtest1"}  # site prefix "vm", no dash
    assert attrs(disk.find("target")) == {"dev": "vda", "bus": "virtio"}


def test_cdrom_is_sata_readonly_and_empty_by_default() -> None:
    (cd,) = [x for x in dom().findall("devices/disk") if x.get("device") == "cdrom"]
    assert attrs(cd) == {"type": "file", "device": "cdrom"}
    assert attrs(cd.find("driver")) == {"name": "qemu", "type": "raw"}
    assert cd.find("source") is None
    assert attrs(cd.find("target")) == {"dev": "sda", "bus": "sata"}
    assert cd.find("readonly") is not None
    (cd,) = [x for x in dom(spec(cdrom="/root/kvm/test1-seed.iso")).findall("devices/disk")
             if x.get("device") == "cdrom"]
    assert attrs(cd.find("source")) == {"file": "/root/kvm/test1-seed.iso"}


def test_controllers_usb_sata_pcie_virtio_serial() -> None:
    ctl = [attrs(c) for c in dom().findall("devices/controller")]
    assert ctl[:3] == [
        {"type": "usb", "index": "0", "model": "qemu-xhci", "ports": "15"},
        {"type": "sata", "index": "0"},
        {"type": "pci", "index": "0", "model": "pcie-root"},
    ]
    assert ctl[3:10] == [{"type": "pci", "index": str(i), "model": "pcie-root-port"} for i in range(1, 8)]
    assert ctl[10:] == [{"type": "virtio-serial", "index": "0"}]


def test_serial_console_channel_input_balloon_rng() -> None:
    d = dom()
    serial = d.find("devices/serial")
    assert attrs(serial) == {"type": "pty"}
    assert attrs(serial.find("target")) == {"type": "isa-serial", "port": "0"}  # type: ignore[union-attr]
    assert attrs(serial.find("target/model")) == {"name": "isa-serial"}  # type: ignore[union-attr]
    assert serial.find("log") is None  # type: ignore[union-attr]
    assert attrs(d.find("devices/console")) == {"type": "pty"}
    assert attrs(d.find("devices/console/target")) == {"type": "serial", "port": "0"}
    assert attrs(d.find("devices/channel")) == {"type": "unix"}
    assert attrs(d.find("devices/channel/target")) == {"type": "virtio", "name": "org.qemu.guest_agent.0"}
    assert [attrs(i) for i in d.findall("devices/input")] == [{"type": "mouse", "bus": "ps2"}]
    assert attrs(d.find("devices/memballoon")) == {"model": "virtio"}
    assert attrs(d.find("devices/rng")) == {"model": "virtio"}
    assert attrs(d.find("devices/rng/backend")) == {"model": "random"}
    assert d.findtext("devices/rng/backend") == "/dev/urandom"
    assert d.find(".//address") is None  # PCI addresses are left to libvirt


def test_one_virtio_bridge_interface_per_network() -> None:
    nics = dom(spec(vlans=(2368, 223))).findall("devices/interface")
    assert [attrs(n) for n in nics] == [{"type": "bridge"}, {"type": "bridge"}]
    assert [attrs(n.find("source")) for n in nics] == [{"bridge": "virbr1.2368"}, {"bridge": "virbr1.223"}]
    assert [attrs(n.find("model")) for n in nics] == [{"type": "virtio"}] * 2


def test_data_disks_follow_as_vdb_vdc() -> None:
    disks = [x for x in dom(spec(data_lvs=("vmtest1-data", "vmtest1-logs"))).findall("devices/disk")
             if x.get("device") == "disk"]
    assert [(attrs(x.find("source"))["dev"], attrs(x.find("target"))["dev"]) for x in disks] == [
        ("/dev/rl_build/vmtest1", "vda"), ("/dev/rl_build/vmtest1-data", "vdb"),
        ("/dev/rl_build/vmtest1-logs", "vdc")]


def test_direct_kernel_boot_file_disk_serial_log_and_no_network() -> None:
    s = GuestSpec("tcg1", 262144, 1, (), disk_path="/var/tmp/t/disk.raw", kernel="/var/tmp/t/vmlinuz",
                  initrd="/var/tmp/t/initrd", cmdline="console=ttyS0", serial_log="/var/tmp/t/serial.log",
                  allow_no_network=True)
    d = dom(s)
    assert [(e.tag, e.text) for e in kids(d.find("os")) if e.tag in ("kernel", "initrd", "cmdline")] == [
        ("kernel", "/var/tmp/t/vmlinuz"), ("initrd", "/var/tmp/t/initrd"), ("cmdline", "console=ttyS0")]
    disk = d.find("devices/disk")
    assert attrs(disk) == {"type": "file", "device": "disk"}
    assert attrs(disk.find("source")) == {"file": "/var/tmp/t/disk.raw"}  # type: ignore[union-attr]
    assert attrs(d.find("devices/serial/log")) == {"file": "/var/tmp/t/serial.log", "append": "off"}
    assert d.findall("devices/interface") == []


def test_site_domain_type_and_emulator_are_used(tmp_path: Path) -> None:
    text = (Path(SITE.path).read_text().replace('domain_type = "kvm"', 'domain_type = "qemu"')
            .replace("/usr/libexec/qemu-kvm", "/usr/bin/qemu-system-x86_64"))
    (tmp_path / "s.toml").write_text(text)
    debian = load_site(tmp_path / "s.toml")
    d = ET.fromstring(render_domain_xml(debian, spec()))
    assert d.get("type") == "qemu"
    assert d.findtext("devices/emulator") == "/usr/bin/qemu-system-x86_64"


def _validate(xml: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("virt-xml-validate") is None or shutil.which("xmllint") is None:
        pytest.skip("virt-xml-validate/xmllint missing (libvirt-clients, libxml2-utils)")
    f = tmp / "domain.xml"
    f.write_text(xml)
    return subprocess.run(["virt-xml-validate", str(f), "domain"], capture_output=True, text=True)


@pytest.mark.parametrize("kw", [
    {},
    {"vlans": (2368, 223, 68), "data_lvs": ("vmtest1-data",), "cdrom": "/root/kvm/test1-seed.iso"},
    {"vlans": (), "allow_no_network": True, "kernel": "/k", "initrd": "/i", "cmdline": "console=ttyS0",
     "disk_path": "/var/tmp/disk.raw", "serial_log": "/var/log/t.log"},
])
def test_libvirt_schema_accepts_it(tmp_path: Path, kw: dict[str, object]) -> None:
    r = _validate(render_domain_xml(SITE, spec(**kw)), tmp_path)
    assert r.returncode == 0, r.stderr
    assert "validates" in r.stdout + r.stderr


def test_libvirt_schema_check_can_fail(tmp_path: Path) -> None:
    bad = render_domain_xml(SITE, spec()).replace("<vcpu", "<vcpux").replace("</vcpu>", "</vcpux>")
    assert _validate(bad, tmp_path).returncode != 0


def test_readers_round_trip() -> None:
    s = spec(vlans=(2368, 223), data_lvs=("vmtest1-data",), cdrom="/root/kvm/seed.iso")
    f = read_domain(render_domain_xml(SITE, s))
    assert (f.name, f.domain_type, f.memory_kib, f.vcpus) == ("test1", "kvm", 2097152, 2)
    assert f.bridges == ("virbr1.2368", "virbr1.223")
    assert f.disk_sources == ("/dev/rl_build/vmtest1", "/dev/rl_build/vmtest1-data")
    assert f.cdrom == "/root/kvm/seed.iso"
    assert f.emulator == "/usr/libexec/qemu-kvm"


def test_reader_on_libvirts_own_xml_of_a_real_qemu_guest() -> None:
    """Captured with XMLDesc(0) from a running TCG guest on libvirt 9.0 (integration test)."""
    f = read_domain((FIX / "qemu-running.xml").read_text())
    assert f.domain_type == "qemu"
    assert f.machine is not None and f.machine.startswith("pc-q35")
    assert "machine: q35" in f.lines()  # libvirt's pc-q35-7.2 counts as the same machine
    assert f.memory_kib == 262144 and f.vcpus == 1
    assert f.disk_sources and f.kernel and f.kernel.endswith("vmlinuz")


@pytest.mark.parametrize(("unit", "value", "kib"), [
    ("KiB", "2097152", 2097152), ("MiB", "2048", 2097152), ("GiB", "2", 2097152), ("bytes", "1048576", 1024),
])
def test_reader_memory_units(unit: str, value: str, kib: int) -> None:
    xml = f"<domain type='kvm'><name>a</name><memory unit='{unit}'>{value}</memory><vcpu>1</vcpu></domain>"
    assert read_domain(xml).memory_kib == kib


@pytest.mark.parametrize("text", ["not xml", "<network><name>x</name></network>"])
def test_reader_refuses_what_is_not_a_domain(text: str) -> None:
    with pytest.raises(InvalidInput, match="not a domain XML"):
        read_domain(text)


def test_with_uuid_sets_one_uuid_after_the_name() -> None:
    xml = with_uuid(render_domain_xml(SITE, spec()), "f7e9fd61-5fa8-43f8-82fd-9815252dbde2")
    xml = with_uuid(xml, "0e6c1f83-8a8d-4d3b-9a39-1f1f5d7a6e10")
    d = ET.fromstring(xml)
    assert [c.tag for c in d][:3] == ["name", "uuid", "memory"]
    assert [u.text for u in d.findall("uuid")] == ["0e6c1f83-8a8d-4d3b-9a39-1f1f5d7a6e10"]


# -- edits of an existing definition (lv-rename, retiring the seed) --------------------------


def test_a_disk_source_is_replaced_and_nothing_else() -> None:
    live = (FIX / "qemu-running.xml").read_text()
    was = read_domain(live)
    old = was.disk_sources[0]
    new_xml = with_disk_source(live, old, "/dev/rl_build/vmnew")
    now = read_domain(new_xml)
    assert now.disk_sources == ("/dev/rl_build/vmnew",)
    assert (now.uuid, now.bridges, now.memory_kib, now.kernel) == (was.uuid, was.bridges, was.memory_kib, was.kernel)
    assert with_disk_source(live, "/dev/rl_build/other", "/dev/x").count("<disk") == live.count("<disk")


def test_the_guides_header_comment_survives_an_edit() -> None:
    kept = "<!-- guide 3.2: change name, disk, bridge -->\n" + render_domain_xml(SITE, spec())
    out = with_disk_source(kept, "/dev/rl_build/vmtest1", "/dev/rl_build/vmtest9")
    assert out.startswith("<!-- guide 3.2: change name, disk, bridge -->\n<domain")
    assert read_domain(out).disk_sources == ("/dev/rl_build/vmtest9",)


def test_the_seed_leaves_the_drive_empty() -> None:
    seeded = render_domain_xml(SITE, spec(cdrom="/root/kvm/test1-seed.iso"))
    empty = without_cdrom_media(seeded, "/root/kvm/test1-seed.iso")
    assert read_domain(empty).cdrom is None and read_domain(empty).lines() == read_domain(
        render_domain_xml(SITE, spec())).lines()
    assert without_cdrom_media(seeded, "/root/kvm/other.iso").count("test1-seed.iso") == 1
    drive = ejected_drive(seeded, "/root/kvm/test1-seed.iso")
    assert drive is not None and drive.startswith('<disk type="file" device="cdrom">')
    assert "source" not in drive and '<target dev="sda" bus="sata" />' in drive
    assert ejected_drive(empty, "/root/kvm/test1-seed.iso") is None
