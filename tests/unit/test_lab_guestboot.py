"""The one-level boot harness (pure parts): domain XML -> QEMU argv, the VLAN as a user network,
the refusal to boot a disk that libvirt runs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from kvmops.cmd import Cmd
from kvmops.host import Host
from kvmops_lab import guestboot as gb
from kvmops_lab.errors import LabError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "libvirt"
VLAN = gb.Vlan(ipaddress.IPv4Network("10.5.68.0/24"), ipaddress.IPv4Address("10.5.68.254"),
               ipaddress.IPv4Address("10.5.68.237"))


def _dom(name: str) -> gb.BootDomain:
    return gb.parse_domain((FIXTURES / name).read_text())


def test_reads_the_domain_libvirt_holds() -> None:
    d = _dom("lab-guest-create.xml")
    assert d.name == "demo1" and d.machine.startswith("pc-q35-")
    assert d.memory_mib == 512 and d.vcpus == 1
    assert d.disk == "/dev/rl_build/vmdemo1" and d.disk_bus == "virtio"
    assert d.cdrom is None and d.cdrom_bus == "sata"
    assert len(d.nics) == 1 and d.nics[0].bridge == "virbr1.2368" and d.nics[0].model == "virtio"
    assert d.nics[0].mac.startswith("52:54:00:")
    assert d.agent and d.rng


def test_a_running_test_driver_domain_too() -> None:
    d = _dom("qemu-running.xml")
    assert d.disk == "/var/tmp/kvmops-tcg-e7trswju/disk.raw" and d.memory_mib == 256 and d.nics == ()


def test_no_system_disk_is_refused() -> None:
    with pytest.raises(LabError, match="no system disk vda"):
        gb.parse_domain("<domain><name>x</name><memory>1024</memory><devices/></domain>")


def test_qemu_argv_boots_the_disk_over_nbd_with_the_vlan_as_user_network() -> None:
    d = _dom("lab-guest-create.xml")
    argv = gb.qemu_argv(d, VLAN, nbd_port=40001, ssh_port=40002, seed="/w/seed.iso", workdir="/w")
    s = " ".join(argv)
    assert argv[0] == "qemu-system-x86_64" and "q35,accel=tcg" in argv
    assert argv[argv.index("-m") + 1] == "512" and argv[argv.index("-smp") + 1] == "1"
    assert "file.driver=nbd,file.server.type=inet,file.server.host=127.0.0.1,file.server.port=40001" in s
    assert "virtio-blk-pci,drive=vda,bootindex=1" in argv
    assert "file=/w/seed.iso,format=raw,if=none,id=cd0,media=cdrom,readonly=on" in argv
    assert "ide-cd,drive=cd0,bus=ide.0" in argv
    net = argv[argv.index("-netdev") + 1]
    assert net.startswith("user,id=net0,restrict=on,ipv6=off,net=10.5.68.0/24,host=10.5.68.254,")
    assert "hostfwd=tcp:127.0.0.1:40002-10.5.68.237:22" in net
    # the NIC on the PCIe root port of the bus libvirt gave it (1): the guest names it as under libvirt
    assert d.nics[0].bus == 1 and "pcie-root-port,id=rp1,bus=pcie.0,chassis=1" in argv
    assert f"virtio-net-pci,netdev=net0,mac={d.nics[0].mac},bus=rp1" in argv
    assert "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0" in argv and "virtio-rng-pci" in argv
    assert argv[argv.index("-serial") + 1] == "stdio" and "unix:/w/qmp.sock,server=on,wait=off" in argv


def test_memory_and_vcpus_are_capped_and_an_empty_cdrom_stays_empty() -> None:
    d = gb.BootDomain("big", "pc-q35-7.2", 16384, 8, "/dev/vg/vmbig", "virtio", None, "sata", (), False, False)
    argv = gb.qemu_argv(d, VLAN, nbd_port=1, ssh_port=2, seed=None, workdir="/w")
    assert argv[argv.index("-m") + 1] == str(gb.MEMORY_CAP_MIB) and argv[argv.index("-smp") + 1] == "2"
    assert "if=none,id=cd0,media=cdrom,readonly=on" in argv
    with pytest.raises(LabError, match="only virtio"):
        gb.qemu_argv(gb.BootDomain("s", "pc", 512, 1, "/d", "sata", None, None, (), False, False), VLAN,
                     nbd_port=1, ssh_port=2, seed=None, workdir="/w")


def test_dhcp_pool_keeps_away_from_the_guest_router_and_dns() -> None:
    for last in (5, 20, 237, 250):
        v = gb.Vlan(VLAN.cidr, VLAN.gateway, ipaddress.IPv4Address(f"10.5.68.{last}"))
        start = v.dhcp_start()
        pool = {start + i for i in range(16)}
        assert v.address not in pool and v.gateway not in pool and VLAN.cidr.network_address + 3 not in pool
    with pytest.raises(LabError, match="must be in"):
        gb.Vlan(VLAN.cidr, VLAN.gateway, ipaddress.IPv4Address("10.5.67.1"))
    with pytest.raises(LabError, match="router's"):
        gb.Vlan(VLAN.cidr, VLAN.gateway, VLAN.gateway)


def test_small_helpers() -> None:
    assert gb.machine_family("pc-q35-7.2") == "q35" and gb.machine_family("pc-i440fx-7.2") == "pc"
    assert gb.NBD_PORT_BASE <= gb.nbd_port("test1") < gb.NBD_PORT_BASE + 500
    assert gb.nbd_port("test1") == gb.nbd_port("test1")
    assert gb.lv_is_open("  -wi-ao----") and not gb.lv_is_open("  -wi-a-----") and not gb.lv_is_open("")
    argv = gb.nbd_server_argv("/dev/rl_build/vmx", "10.0.2.15", 10900, "/run/x.pid")
    assert argv[0] == "qemu-nbd" and "--fork" in argv and "--persistent" in argv and argv[-1] == "/dev/rl_build/vmx"
    assert "--bind=10.0.2.15" in argv and "--port=10900" in argv and "--export-name=kvmops" in argv


@dataclass
class _Res:
    stdout: str
    returncode: int = 0


class FakeLab:
    """Answers ``virsh domstate`` and ``lvs`` like the lab would."""

    def __init__(self, state: str, attr: str) -> None:
        self.answers = {"virsh": state + "\n\n", "lvs": f"  {attr}\n"}
        self.ran: list[tuple[str, ...]] = []

    def run(self, cmd: Cmd, **_kw: Any) -> _Res:
        self.ran.append(cmd.argv)
        assert not cmd.mutates
        return _Res(self.answers[cmd.argv[0]])


def test_a_disk_that_libvirt_runs_is_never_booted_twice() -> None:
    running = cast(Host, FakeLab("running", "-wi-ao----"))
    with pytest.raises(LabError, match="'running' in the lab .libvirt.: a disk must not be booted twice"):
        gb.check_not_running(running, "test1", "/dev/rl_build/vmtest1")
    held = cast(Host, FakeLab("shut off", "-wi-ao----"))
    with pytest.raises(LabError, match="is open"):
        gb.check_not_running(held, "test1", "/dev/rl_build/vmtest1")
    free = FakeLab("shut off", "-wi-a-----")
    gb.check_not_running(cast(Host, free), "test1", "/dev/rl_build/vmtest1")
    assert free.ran == [("virsh", "domstate", "test1"),
                        ("lvs", "--noheadings", "-o", "lv_attr", "/dev/rl_build/vmtest1")]


def test_two_nics_on_two_user_networks_each_with_its_ssh_port() -> None:
    """Issue 24: a guest with a NIC on each of two VLANs; each NIC on a user network of its own
    (its VLAN's CIDR, the router .254) with its SSH port forwarded to its static address."""
    one, two = gb.Nic("52:54:00:00:00:01", "virtio", "virbr1.2368", 1), gb.Nic("52:54:00:00:00:02", "virtio",
                                                                                "virbr1.223", 2)
    d = gb.BootDomain("two", "pc-q35-7.2", 512, 1, "/dev/vg/vmtwo", "virtio", None, None, (one, two), False, False)
    other = gb.Vlan(ipaddress.IPv4Network("132.230.223.0/24"), ipaddress.IPv4Address("132.230.223.254"),
                    ipaddress.IPv4Address("132.230.223.200"))
    argv = gb.qemu_argv(d, (VLAN, other), nbd_port=1, ssh_port=(40002, 40003), seed=None, workdir="/w")
    nets = [argv[i + 1] for i, a in enumerate(argv) if a == "-netdev"]
    assert [n.split(",")[1] for n in nets] == ["id=net0", "id=net1"]
    assert "net=132.230.223.0/24,host=132.230.223.254," in nets[1]
    assert "hostfwd=tcp:127.0.0.1:40003-132.230.223.200:22" in nets[1]
    assert "virtio-net-pci,netdev=net1,mac=52:54:00:00:00:02,bus=rp2" in argv
    ports = [a for a in argv if a.startswith("pcie-root-port")]
    assert ports == ["pcie-root-port,id=rp1,bus=pcie.0,chassis=1", "pcie-root-port,id=rp2,bus=pcie.0,chassis=2"]
    assert argv.index(ports[-1]) < argv.index("virtio-blk-pci,drive=vda,bootindex=1")  # buses 1, 2 go to the NICs
    with pytest.raises(LabError, match="one VLAN and one SSH port for each"):
        gb.qemu_argv(d, (VLAN, other), nbd_port=1, ssh_port=40002, seed=None, workdir="/w")
