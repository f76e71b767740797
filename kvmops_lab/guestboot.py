"""Boot what a runbook wrote, with one level of QEMU on this machine: the proof harness.

A guest's disk is an LV inside the lab. Booting it there needs KVM inside the lab (see
guest_accel.py: 84-185 s to a login prompt for a systemd guest, when it works); booting it
here, one level of TCG, takes 35 s and works on any machine that runs the lab. So::

    lab:  virsh domstate GUEST -> shut off (refused otherwise); the LV is not open
    lab:  qemu-nbd --fork --persistent --export-name=kvmops --bind=<lab0 address> --port=P /dev/VG/LV
    lab QEMU (QMP):  hostfwd_add n0 tcp:127.0.0.1:H-<lab0 address>:P
    here: the seed ISO copied out of the lab's xml_dir, sha256 checked
    here: qemu-system-x86_64 -accel tcg ... (from `virsh dumpxml GUEST`: q35, memory, vCPUs,
          virtio disk = nbd://127.0.0.1:H, SATA CD-ROM = the seed, virtio NIC with the
          domain's MAC, the guest agent channel, virtio RNG, serial on stdio)
          -netdev user,restrict=on,net=<VLAN CIDR>,host=<.254>,hostfwd=tcp:127.0.0.1:S-<address>:22

The guest's writes (journal, cloud-init's state, host keys) land on the LV in the lab, so
later runbooks act on a disk a real guest has used. QEMU's user network plays the VLAN's
router: it is ``.254`` and answers ARP for it, and forwards a port to the guest's static
address. ``restrict=on``: nothing leaves this machine.

QEMU's ``dns=`` can only move its own resolver inside the user network (default ``.3``); the
guide's DNS server (132.230.200.200) is outside the VLAN and unreachable with ``restrict=on``,
so the DNS check reads the guest's configuration (nmcli, resolv.conf), not a resolution.

What it does NOT prove: libvirt's own start of the domain (the command line is derived from
its XML, not made by libvirt; libvirt's start is proven by the small guest inside the lab,
see nested.py), the bridge and the 802.1Q VLAN (QEMU's user network stands in), DNS
resolution, KVM (TCG here), a RHEL userland (the image is Debian in GenericCloud's shape).

:func:`boot_from_lab` is the context manager; :class:`BootedGuest` offers the console (wait for
the login prompt, log in as root with a password and run a command) and SSH as a user with a
key; the check functions below read the guest's state over SSH. QEMU, the NBD export, the port
forward and the temporary files are removed on every path out.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kvmops.cmd import change, read
from kvmops.guests.boot import BootVerdict, wait_for_boot
from kvmops.host import Host
from kvmops_lab.errors import LabError
from kvmops_lab.ports import free_port, port_taken_message
from kvmops_lab.qmp import qmp
from kvmops_lab.state import LabState

QEMU = "qemu-system-x86_64"
NBD_EXPORT = "kvmops"
NBD_PORT_BASE = 10809
LAB_NIC = "lab0"
LAB_NETDEV = "n0"  # the lab's admin NIC in its QEMU (qemu.py)
MEMORY_CAP_MIB = 2048
VCPU_CAP = 2
Say = Callable[[str], None]


# ----------------------------------------------------------------------------- pure parts
@dataclass(frozen=True)
class Nic:
    mac: str
    model: str
    bridge: str | None
    bus: int | None = None  # the PCI bus libvirt put it on (q35: a pcie-root-port's), if it says


@dataclass(frozen=True)
class BootDomain:
    """What booting a domain's disk needs, read from libvirt's XML of it."""

    name: str
    machine: str
    memory_mib: int
    vcpus: int
    disk: str
    disk_bus: str
    cdrom: str | None
    cdrom_bus: str | None
    nics: tuple[Nic, ...]
    agent: bool
    rng: bool


def _kib(el: ET.Element | None) -> int:
    if el is None or not (el.text or "").strip():
        raise LabError("the domain XML has no <memory>")
    unit = (el.get("unit") or "KiB").lower()
    factor = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "m": 1024, "mib": 1024, "g": 1024**2,
              "gib": 1024**2}.get(unit)
    if factor is None:
        raise LabError(f"unknown memory unit {unit!r} in the domain XML")
    return int(int((el.text or "0").strip()) * factor)


def parse_domain(xml: str) -> BootDomain:
    """A :class:`BootDomain` from ``virsh dumpxml``; LabError when it has no disk vda."""
    root = ET.fromstring(xml)  # noqa: S314 (libvirt's XML of a lab domain)
    name = root.findtext("name") or "?"
    disk = cdrom = None
    disk_bus = cdrom_bus = None
    for d in root.iterfind("devices/disk"):
        src = d.find("source")
        path = None if src is None else (src.get("dev") or src.get("file"))
        target = d.find("target")
        bus = None if target is None else target.get("bus")
        if d.get("device") == "cdrom" and cdrom_bus is None:
            cdrom, cdrom_bus = path, bus
        elif d.get("device", "disk") == "disk" and target is not None and target.get("dev") == "vda":
            disk, disk_bus = path, bus
    if not disk:
        raise LabError(f"domain {name} has no system disk vda with a source")
    nics = []
    for i in root.iterfind("devices/interface"):
        mac, model, src = i.find("mac"), i.find("model"), i.find("source")
        addr = i.find("address[@type='pci']")
        nics.append(Nic(mac=(mac.get("address") or "") if mac is not None else "",
                        model=(model.get("type") or "virtio") if model is not None else "virtio",
                        bridge=src.get("bridge") if src is not None else None,
                        bus=int(addr.get("bus", "0"), 0) if addr is not None else None))
    os_type = root.find("os/type")
    agent = any(t.get("name") == "org.qemu.guest_agent.0" for t in root.iterfind("devices/channel/target"))
    return BootDomain(
        name=name, machine=(os_type.get("machine") if os_type is not None else None) or "q35",
        memory_mib=_kib(root.find("memory")) // 1024, vcpus=int((root.findtext("vcpu") or "1").strip()),
        disk=disk, disk_bus=disk_bus or "virtio", cdrom=cdrom, cdrom_bus=cdrom_bus, nics=tuple(nics),
        agent=agent, rng=root.find("devices/rng") is not None,
    )


@dataclass(frozen=True)
class Vlan:
    """The guest's network as QEMU's user network plays it: CIDR, router (.254), address."""

    cidr: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    address: ipaddress.IPv4Address

    def __post_init__(self) -> None:
        if self.address not in self.cidr or self.gateway not in self.cidr:
            raise LabError(f"{self.address} and the router {self.gateway} must be in {self.cidr}")
        if self.address == self.gateway:
            raise LabError(f"the guest's address {self.address} is the router's")

    def dhcp_start(self) -> ipaddress.IPv4Address:
        """First address of QEMU's DHCP pool (16 addresses), away from the guest, the router
        and QEMU's DNS (.3): a guest that fell back to DHCP is then NOT at its static address."""
        taken = {self.address, self.gateway, self.cidr.network_address + 3}
        hosts = list(self.cidr.hosts())
        for i in range(4, len(hosts) - 16, 16):
            block = hosts[i:i + 16]
            if not taken & set(block):
                return block[0]
        raise LabError(f"{self.cidr} is too small for QEMU's DHCP pool next to the guest")


def machine_family(machine: str) -> str:
    """``pc-q35-7.2`` -> ``q35`` (this QEMU's newest of that family); ``pc-i440fx-*`` -> ``pc``."""
    return "q35" if "q35" in machine else "pc"


def nbd_port(guest: str) -> int:
    """The lab-side NBD port of a guest (one export per guest at a time)."""
    return NBD_PORT_BASE + zlib.crc32(guest.encode()) % 500


def qemu_argv(dom: BootDomain, vlan: Vlan | tuple[Vlan, ...], *, nbd_port: int, ssh_port: int | tuple[int, ...],
              seed: str | None, workdir: str, memory_cap_mib: int = MEMORY_CAP_MIB,
              vcpu_cap: int = VCPU_CAP) -> tuple[str, ...]:
    """The QEMU command line of the domain, its disk over NBD, each VLAN as a user network.

    ``vlan``/``ssh_port``: one, or one per NIC (NIC i on user network i, its SSH port forwarded
    to its address). On q35 each NIC sits on a PCIe root port whose bus is the one libvirt gave
    it (else bus i+1, as libvirt lays a q35 guest out), so the guest names it as under libvirt:
    ``enp1s0``, ``enp2s0`` with predictable names.
    """
    if dom.disk_bus != "virtio":
        raise LabError(f"domain {dom.name}: system disk on bus {dom.disk_bus}, only virtio is supported here")
    vlans = vlan if isinstance(vlan, tuple) else (vlan,)
    ports = ssh_port if isinstance(ssh_port, tuple) else (ssh_port,)
    if len(ports) != len(vlans) or len(vlans) > max(len(dom.nics), 1):
        raise LabError(f"domain {dom.name} has {len(dom.nics)} NIC(s): give one VLAN and one SSH port for each "
                       f"(got {len(vlans)} and {len(ports)})")
    argv = [
        QEMU, "-name", f"guest={dom.name}-proof", "-machine", f"{machine_family(dom.machine)},accel=tcg",
        "-cpu", "max", "-m", str(min(dom.memory_mib, memory_cap_mib)), "-smp", str(max(1, min(dom.vcpus, vcpu_cap))),
        "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none", "-monitor", "none",
        "-serial", "stdio", "-qmp", f"unix:{workdir}/qmp.sock,server=on,wait=off",
    ]
    argv += _nics(dom, vlans, ports)
    argv += [
        "-drive", (f"driver=raw,if=none,id=vda,cache=writeback,discard=unmap,file.driver=nbd,"
                   f"file.server.type=inet,file.server.host=127.0.0.1,file.server.port={nbd_port},"
                   f"file.export={NBD_EXPORT}"),
        "-device", "virtio-blk-pci,drive=vda,bootindex=1",
    ]
    if dom.cdrom_bus is not None:
        cd = f"file={seed},format=raw," if seed else ""
        bus = ",bus=ide.0" if machine_family(dom.machine) == "q35" else ""
        argv += ["-drive", f"{cd}if=none,id=cd0,media=cdrom,readonly=on", "-device", f"ide-cd,drive=cd0{bus}"]
    if dom.agent:
        argv += ["-device", "virtio-serial-pci",
                 "-chardev", f"socket,id=qga0,path={workdir}/qga.sock,server=on,wait=off",
                 "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0"]
    if dom.rng:
        argv += ["-device", "virtio-rng-pci"]
    return tuple(argv)


def _nics(dom: BootDomain, vlans: tuple[Vlan, ...], ports: tuple[int, ...]) -> list[str]:
    """The NICs' root ports (q35; first, so the guest numbers their buses 1, 2, ...), user
    networks and devices."""
    nics = dom.nics or (Nic("", "virtio", None),)
    q35 = machine_family(dom.machine) == "q35"
    buses = [n.bus or i + 1 for i, n in enumerate(nics[:len(vlans)])]
    argv: list[str] = []
    for b in range(1, max(buses) + 1) if q35 else ():
        argv += ["-device", f"pcie-root-port,id=rp{b},bus=pcie.0,chassis={b}"]
    for i, (v, port) in enumerate(zip(vlans, ports, strict=True)):
        nic = nics[i]
        argv += ["-netdev", (f"user,id=net{i},restrict=on,ipv6=off,net={v.cidr},host={v.gateway},"
                             f"dhcpstart={v.dhcp_start()},hostfwd=tcp:127.0.0.1:{port}-{v.address}:22")]
        model = "virtio-net-pci" if nic.model == "virtio" else nic.model
        mac = f",mac={nic.mac}" if nic.mac else ""
        argv += ["-device", f"{model},netdev=net{i}{mac}" + (f",bus=rp{buses[i]}" if q35 else "")]
    return argv


def nbd_server_argv(device: str, bind: str, port: int, pidfile: str) -> tuple[str, ...]:
    """``qemu-nbd --fork --persistent ... DEVICE``: returns once the export listens."""
    return ("qemu-nbd", "--fork", "--persistent", "--shared=1", "--format=raw", "--cache=writeback",
            "--discard=unmap", f"--export-name={NBD_EXPORT}", f"--bind={bind}", f"--port={port}",
            f"--pid-file={pidfile}", device)


def lv_is_open(lv_attr: str) -> bool:
    """The sixth ``lv_attr`` character is ``o`` while something holds the LV open."""
    return len(lv_attr.strip()) >= 6 and lv_attr.strip()[5] == "o"


# ----------------------------------------------------------------------------- the lab side
def _sh(host: Host, *argv: str, ok: tuple[int, ...] = (0,)) -> str:
    return host.run(read(*argv, ok=ok)).stdout


def domain_state(host: Host, guest: str) -> str:
    """libvirt's state of the domain (``virsh domstate``): ``shut off``, ``running``, ..."""
    return _sh(host, "virsh", "domstate", guest).strip()


def check_not_running(host: Host, guest: str, disk: str) -> None:
    """Refuse unless libvirt says the domain is shut off and nothing holds its LV open."""
    state = domain_state(host, guest)
    if state != "shut off":
        raise LabError(f"guest {guest} is {state!r} in the lab (libvirt): a disk must not be booted twice; "
                       f"shut it down first (kvmops run guest-lifecycle -p action shutdown)")
    attr = _sh(host, "lvs", "--noheadings", "-o", "lv_attr", disk).strip()
    if lv_is_open(attr):
        raise LabError(f"{disk} is open (lv_attr {attr}) although {guest} is shut off: something else uses it")


def lab_address(host: Host) -> str:
    data = json.loads(_sh(host, "ip", "-j", "-4", "address", "show", "dev", LAB_NIC))
    addrs = [a["local"] for d in data for a in d.get("addr_info", []) if a.get("family") == "inet"]
    if not addrs:
        raise LabError(f"the lab's {LAB_NIC} has no IPv4 address")
    return str(addrs[0])


def copy_out(host: Host, path: str, dest: Path) -> str:
    """Copy a (small) file out of the lab byte for byte; its sha256 (checked on both sides)."""
    want = _sh(host, "sha256sum", path).split()[0]
    data = base64.b64decode(_sh(host, "base64", "-w0", path))
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise LabError(f"copy of {path} out of the lab is not byte-exact (sha256 {got} != {want})")
    dest.write_bytes(data)
    return got


@contextlib.contextmanager
def nbd_export(host: Host, device: str, guest: str, bind: str) -> Iterator[int]:
    """Export ``device`` read-write with qemu-nbd in the lab; stopped on every path out."""
    port = nbd_port(guest)
    pidfile = f"/run/kvmops-nbd-{guest}.pid"
    stop_nbd(host, pidfile)  # one left by a run that was killed
    host.run(change(*nbd_server_argv(device, bind, port, pidfile), timeout=60))
    try:
        yield port
    finally:
        stop_nbd(host, pidfile)
        host.run(change("blockdev", "--flushbufs", device), check=False)


def stop_nbd(host: Host, pidfile: str) -> None:
    """Kill the qemu-nbd of ``pidfile`` (only if it is one), wait for it, remove the file."""
    script = (f'p=$(cat {shlex.quote(pidfile)} 2>/dev/null) || exit 0; '
              'if tr "\\0" " " < /proc/$p/cmdline 2>/dev/null | grep -q "^qemu-nbd "; then kill $p; '
              'for i in $(seq 50); do kill -0 $p 2>/dev/null || break; sleep 0.2; done; fi; '
              f'rm -f {shlex.quote(pidfile)}')
    host.run(change("sh", "-c", script), check=False)


@contextlib.contextmanager
def lab_forward(lab: LabState, guest_addr: str, guest_port: int) -> Iterator[int]:
    """A port on 127.0.0.1 forwarded into the lab (QMP ``hostfwd_add`` on its admin NIC)."""
    for _attempt in range(5):
        port = free_port()
        rule = f"tcp:127.0.0.1:{port}-{guest_addr}:{guest_port}"
        answer = qmp(Path(lab.qmp), "human-monitor-command",
                     arguments={"command-line": f"hostfwd_add {LAB_NETDEV} {rule}"})
        text = str(answer.get("return", answer.get("error", "")))
        if "error" not in answer and not text.strip():
            break
        if not port_taken_message(text):
            raise LabError(f"the lab's QEMU refused the port forward {rule}: {text}")
    else:
        raise LabError("no free port for the forward into the lab after 5 tries")
    try:
        yield port
    finally:
        with contextlib.suppress(OSError):
            qmp(Path(lab.qmp), "human-monitor-command",
                arguments={"command-line": f"hostfwd_remove {LAB_NETDEV} tcp:127.0.0.1:{port}"})


# ----------------------------------------------------------------------------- the guest here
@dataclass(frozen=True)
class SshLogin:
    """Who logs in over SSH and with which private key (a path; the key is never read here)."""

    user: str
    key: Path


# ssh's messages when the connection ended before the command could run
PRE_AUTH_DROPS = ("kex_exchange_identification", "Connection reset by peer", "Connection refused",
                  "Connection closed by", "banner exchange")


class LoginFailed(LabError):
    """The console said ``Login incorrect``: decisive proof that the password is not that one."""


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process dies, so no QEMU is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class BootedGuest:
    """A guest booted here from its lab disk: its console, its SSH port, timings."""

    name: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    ssh_port: int  # the first NIC's
    started: float
    timings: dict[str, float] = field(default_factory=dict)
    ssh_ports: tuple[int, ...] = ()  # one per NIC booted with a network (the first is ssh_port)
    _buf: bytearray = field(default_factory=bytearray)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reader: threading.Thread | None = None
    _pos: int = 0

    def start_reader(self) -> None:
        self._reader = threading.Thread(target=self._read_loop, name=f"console-{self.name}", daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        log = (self.workdir / "console.log").open("ab")
        with log:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                log.write(chunk)
                log.flush()
                with self._lock:
                    self._buf += chunk

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    def console(self) -> str:
        """Everything the guest printed on ttyS0 so far."""
        with self._lock:
            return bytes(self._buf).decode("utf-8", "replace")

    def _new_text(self, timeout: float) -> str:
        """What arrived since the last call, waiting up to ``timeout`` seconds for something."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                data = bytes(self._buf[self._pos:])
                self._pos = len(self._buf)
            if data or time.monotonic() >= deadline or self.proc.poll() is not None:
                return data.decode("utf-8", "replace")
            time.sleep(0.2)

    def type(self, text: str) -> None:
        """Type on the serial console (nothing typed is logged here)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def wait_for_login(self, timeout: float = 300.0) -> BootVerdict:
        """Wait for the login prompt on ttyS0 (:func:`kvmops.guests.boot.wait_for_boot`)."""
        with self._lock:
            self._pos = 0
        verdict, _ = wait_for_boot(self._new_text, timeout)
        if verdict.booted:
            verdict = BootVerdict(True, verdict.stage, time.monotonic() - self.started, verdict.evidence,
                                  verdict.last)
            self.timings["qemu start to login prompt"] = verdict.seconds
        return verdict

    def _expect(self, needles: tuple[str, ...], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            seen += self._new_text(min(1.0, max(deadline - time.monotonic(), 0.0)))
            for n in needles:
                if n in seen:
                    return n
            if self.proc.poll() is not None:
                break
        raise LabError(f"no {' or '.join(map(repr, needles))} on {self.name}'s console within {timeout:.0f} s; "
                       f"it last printed: {seen[-300:]!r}")

    def console_run(self, user: str, password: str, command: str, timeout: float = 120.0) -> str:
        """Log in on ttyS0 with a password, run ``command``, log out; its output.

        A wrong password raises :class:`LoginFailed`. The password is typed, never logged
        (``login`` does not echo it; this object logs only what the guest prints).
        """
        begin, end = "KVMOPS-CONSOLE-BEGIN", "KVMOPS-CONSOLE-END"
        with self._lock:
            self._pos = len(self._buf)
        self.type("\r")
        self._expect(("login:",), timeout)
        self.type(f"{user}\r")
        self._expect(("Password:",), timeout)
        self.type(f"{password}\r")
        if self._expect(("Login incorrect", "# ", "$ "), timeout) == "Login incorrect":
            raise LoginFailed(f"the console of {self.name} refused {user}'s password (Login incorrect)")
        # The markers are printed by the shell, so the echoed command line does not match them.
        self.type(f"echo {begin[:7]}''{begin[7:]}; {command}; echo {end[:7]}''{end[7:]} $?\r")
        with self._lock:
            start = len(self._buf)
        self._expect((end,), timeout)
        time.sleep(0.3)
        with self._lock:
            text = bytes(self._buf[start:]).decode("utf-8", "replace").replace("\r", "")
        self.type("exit\r")
        body = text.split(begin + "\n", 1)[-1]
        out, _, status = body.partition(end)
        lines = [ln for ln in out.splitlines() if not ln.startswith("[") or "]" not in ln[:16]]
        code = status.strip().split()[0] if status.strip() else "?"
        if code != "0":
            raise LabError(f"{command!r} on {self.name}'s console exited {code}: {out.strip()[-300:]}")
        return "\n".join(lines) + ("\n" if lines else "")

    def ssh_argv(self, login: SshLogin, *command: str, connect_timeout: int = 10, port: int | None = None) -> list[str]:
        """``ssh -p PORT -i KEY ... USER@127.0.0.1 -- COMMAND`` to the guest's static address.

        The host key is learned at the first connection (``accept-new`` into this boot's own
        known_hosts): a freshly booted guest made its host keys a moment ago and nobody knows
        them; every later connection of this boot checks them strictly.
        """
        argv = ["ssh", "-p", str(port or self.ssh_port), "-i", str(login.key), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.workdir}/known_hosts", "-o", "StrictHostKeyChecking=accept-new",
                "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}", "-o", "LogLevel=ERROR",
                f"{login.user}@127.0.0.1"]
        if command:
            argv += ["--", shlex.join(command)]
        return argv

    def ssh(self, login: SshLogin, *command: str, timeout: float = 60.0,
            retries: int = 3, port: int | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``command`` in the guest over SSH (to the first NIC's address, or the one whose
        forwarded ``port`` is given); the completed process (not checked).

        A connection dropped before authentication (sshd restarting: cloud-init's first boot
        does that) is retried: the command cannot have run then.
        """
        argv = self.ssh_argv(login, *command, port=port)
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        for _ in range(retries):
            if res.returncode != 255 or not any(m in res.stderr for m in PRE_AUTH_DROPS):
                break
            time.sleep(3)
            res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        return res

    def wait_for_ssh(self, login: SshLogin, timeout: float = 300.0) -> float:
        """Seconds from QEMU's start until ``ssh ... true`` succeeded; LabError after ``timeout``."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabError(f"QEMU of {self.name} exited ({self.proc.returncode}) before SSH answered")
            with contextlib.suppress(subprocess.TimeoutExpired):
                res = self.ssh(login, "true", timeout=30)
                if res.returncode == 0:
                    took = time.monotonic() - self.started
                    self.timings["qemu start to ssh"] = took
                    return took
                last = res.stderr.strip()[-200:]
            time.sleep(2)
        raise LabError(f"ssh {login.user}@{self.name} did not answer within {timeout:.0f} s (last: {last!r})")

    def shutdown(self, timeout: float = 90.0) -> bool:
        """ACPI power-off (QMP system_powerdown) and wait; True when the guest powered off."""
        if self.proc.poll() is not None:
            return True
        with contextlib.suppress(OSError):
            qmp(self.workdir / "qmp.sock", "system_powerdown")
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self._reader is not None:
            self._reader.join(5)


def start_qemu(argv: tuple[str, ...], name: str, workdir: Path, ssh_port: int | tuple[int, ...]) -> BootedGuest:
    """Start QEMU with its serial console on pipes; PortTaken when an SSH forward port was taken."""
    ports = ssh_port if isinstance(ssh_port, tuple) else (ssh_port,)
    errlog = (workdir / "qemu.stderr").open("wb")
    with errlog:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog,
                                preexec_fn=_die_with_parent)
    guest = BootedGuest(name=name, proc=proc, workdir=workdir, ssh_port=ports[0], started=time.monotonic(),
                        ssh_ports=ports)
    guest.start_reader()
    time.sleep(1.0)
    if proc.poll() is not None:
        guest.kill()
        err = (workdir / "qemu.stderr").read_text(errors="replace").strip()
        if port_taken_message(err):
            raise PortTaken(err)
        raise LabError(f"QEMU did not start: {err}")
    return guest


def _free_ports(count: int) -> tuple[int, ...]:
    """``count`` different free ports."""
    out: list[int] = []
    while len(out) < count:
        port = free_port()
        if port not in out:
            out.append(port)
    return tuple(out)


class PortTaken(LabError):
    """QEMU could not bind its host forwarding port (taken meanwhile): try another."""


@contextlib.contextmanager
def boot_from_lab(host: Host, lab: LabState, guest: str, *, address: str, vlan: int,
                  say: Say | None = None, shutdown_timeout: float = 90.0,
                  keep_console: Path | None = None, more: tuple[tuple[int, str], ...] = ()) -> Iterator[BootedGuest]:
    """Boot the lab guest's disk here (see the module doc); always cleaned up.

    ``host`` is a kvmops Host of the lab (``connect(load_site(lab.site), apply=True)``),
    ``address`` the guest's static address in ``vlan`` (its first NIC's); ``more``: (VLAN,
    address) of its next NICs, each on a user network of its own with its SSH port forwarded
    (``BootedGuest.ssh_ports``). On the way out the guest is powered
    off (ACPI, ``shutdown_timeout``) so its filesystem is clean for the next runbook, else
    killed; then the port forward and the NBD export are removed. ``keep_console``: where to
    copy the console log at the end (on every path; e.g. to look at a failed boot).
    """
    say = say or (lambda _line: None)
    t0 = time.monotonic()
    nets = [(host.site.network(vid), ip) for vid, ip in ((vlan, address), *more)]
    v = tuple(Vlan(n.cidr, n.gateway, ipaddress.IPv4Address(ip)) for n, ip in nets)
    dom = parse_domain(_sh(host, "virsh", "dumpxml", guest))
    check_not_running(host, guest, dom.disk)
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix=f"kvmops-boot-{guest}-"))
        stack.callback(shutil.rmtree, workdir, True)
        seed = None
        if dom.cdrom:
            seed = workdir / "seed.iso"
            digest = copy_out(host, dom.cdrom, seed)
            say(f"boot: seed {dom.cdrom} copied out (sha256 {digest[:16]}...)")
        bind = lab_address(host)
        port_in_lab = stack.enter_context(nbd_export(host, dom.disk, guest, bind))
        nbd_here = stack.enter_context(lab_forward(lab, bind, port_in_lab))
        say(f"boot: {dom.disk} exported by qemu-nbd in the lab, reached here on 127.0.0.1:{nbd_here}")
        booted = None
        for _attempt in range(3):
            ssh_ports = _free_ports(len(v))
            ssh_port = ssh_ports[0]
            argv = qemu_argv(dom, v, nbd_port=nbd_here, ssh_port=ssh_ports, seed=str(seed) if seed else None,
                             workdir=str(workdir))
            try:
                booted = start_qemu(argv, guest, workdir, ssh_ports)
                break
            except PortTaken:
                continue
        if booted is None:
            raise LabError("no free SSH port for the guest after 3 tries")
        booted.timings["setup (seed, nbd, forward)"] = booted.started - t0
        say(f"boot: QEMU started (TCG, {dom.memory_mib} MiB capped at {MEMORY_CAP_MIB}, ssh on 127.0.0.1:{ssh_port} "
            f"-> {address}:22)")

        def stop() -> None:
            assert booted is not None
            t1 = time.monotonic()
            clean = booted.shutdown(shutdown_timeout)
            booted.kill()
            booted.timings["power off"] = time.monotonic() - t1
            say(f"boot: guest {'powered off' if clean else 'killed (no power-off in time)'}")
            if keep_console is not None and booted.console_log.exists():
                shutil.copyfile(booted.console_log, keep_console)

        stack.callback(stop)
        yield booted


# ----------------------------------------------------------------------------- checks over SSH
def _out(g: BootedGuest, login: SshLogin, *command: str) -> str:
    res = g.ssh(login, *command)
    if res.returncode != 0:
        raise LabError(f"{shlex.join(command)} in {g.name} exited {res.returncode}: {res.stderr.strip()[-300:]}")
    return res.stdout


def default_gateway(g: BootedGuest, login: SshLogin) -> str | None:
    """The IPv4 default route's gateway (``ip -j route show default``)."""
    routes = json.loads(_out(g, login, "ip", "-j", "-4", "route", "show", "default") or "[]")
    return str(routes[0]["gateway"]) if routes and "gateway" in routes[0] else None


def addresses(g: BootedGuest, login: SshLogin, ifname: str = "eth0") -> list[str]:
    """IPv4 addresses with prefix on ``ifname``: ``["10.5.68.50/24"]``."""
    data = json.loads(_out(g, login, "ip", "-j", "-4", "address", "show", "dev", ifname))
    return [f"{a['local']}/{a['prefixlen']}" for d in data for a in d.get("addr_info", [])]


@dataclass(frozen=True)
class Dns:
    """DNS servers as NetworkManager has them for the device and as resolv.conf lists them."""

    nm: tuple[str, ...]
    resolv_conf: tuple[str, ...]


def dns_servers(g: BootedGuest, login: SshLogin, ifname: str = "eth0") -> Dns:
    nm = _out(g, login, "nmcli", "-t", "-g", "IP4.DNS", "device", "show", ifname)
    resolv = _out(g, login, "cat", "/etc/resolv.conf")
    servers = tuple(s.strip() for s in nm.replace("|", "\n").splitlines() if s.strip())
    listed = tuple(ln.split()[1] for ln in resolv.splitlines() if ln.startswith("nameserver ") and len(ln.split()) > 1)
    return Dns(servers, listed)


def sudo_works(g: BootedGuest, login: SshLogin) -> bool:
    """``sudo -n true`` succeeds (no password asked)."""
    return g.ssh(login, "sudo", "-n", "true").returncode == 0


def root_fs_bytes(g: BootedGuest, login: SshLogin) -> int:
    """Size of the root filesystem (``df -B1 --output=size /``)."""
    return int(_out(g, login, "df", "-B1", "--output=size", "/").split()[-1])


def read_file(g: BootedGuest, login: SshLogin, path: str) -> str:
    return _out(g, login, "cat", path)


def cloud_init_status(g: BootedGuest, login: SshLogin, timeout: float = 600.0) -> str:
    """``cloud-init status --wait --long``: waits until cloud-init finished; its report."""
    res = g.ssh(login, "cloud-init", "status", "--wait", "--long", timeout=timeout)
    return res.stdout + res.stderr


def journal(g: BootedGuest, login: SshLogin, lines: int = 20) -> str:
    """The last lines of this boot's journal (the user must be in systemd-journal or adm)."""
    return _out(g, login, "journalctl", "-b", "--no-pager", "-q", "-n", str(lines))
