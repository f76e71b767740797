"""The small guest as a libvirt domain inside the lab: seconds from ``virsh start`` to its login
prompt, and what the lab's QEMU then costs while the guest idles (issue 12, item 6).

The guest is the small busybox image (``/var/lib/kvmops/images/guest.raw``) copied onto a lab
LV, defined with the site's domain type (``kvm`` when KVM works inside the lab) and a serial
log file; the log is read over SSH until :func:`kvmops.guests.boot.wait_for_boot` sees the
login prompt. Everything is removed at the end, on every path.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from kvmops.cmd import change, read
from kvmops.guests.boot import BootVerdict, wait_for_boot
from kvmops.host import Host
from kvmops_lab.prepare import GUEST_IMAGE_FILE
from kvmops_lab.proofguest import domain_xml

Say = Callable[[str], None]
LOG_DIR = "/var/log/kvmops"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_percent(pid: int, seconds: float) -> float:
    """% of one core a process used over the next ``seconds``."""
    a, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_seconds(pid) - a) / (time.monotonic() - t0)


@dataclass(frozen=True)
class NestedBoot:
    domain_type: str
    start_s: float  # `virsh start` itself
    verdict: BootVerdict  # seconds: from `virsh start` returning to the login prompt
    console: str
    idle_cpu_pct: float | None  # the lab's QEMU while the guest idles at its prompt
    lab_idle_cpu_pct: float | None  # the lab's QEMU before the guest was started


@dataclass(frozen=True)
class SmallDomain:
    """The small guest defined in the lab (not started): its LV, serial log and XML file."""

    name: str
    lv: str  # LV name in the site's VG
    log: str
    xml_file: str
    domain_type: str


def define_small_guest(host: Host, name: str, *, domain_type: str | None = None, memory_mib: int = 512) -> SmallDomain:
    """A 1 GiB LV with the small guest's image and a domain (``domain_type``, default the
    site's) writing its serial console to a log file; a leftover of the same name removed first."""
    dom = SmallDomain(name, host.site.guest_lv(name), f"{LOG_DIR}/{name}-serial.log", f"/tmp/kvmops-{name}.xml",
                      domain_type or host.site.domain_type)
    remove_small_guest(host, dom)
    disk = f"/dev/{host.site.vg}/{dom.lv}"
    host.run(change("lvcreate", "--name", dom.lv, "--size", "1g", "--wipesignatures", "y", "--yes", host.site.vg))
    host.run(change("qemu-img", "convert", "-n", "-O", "raw", "-f", "raw", GUEST_IMAGE_FILE, disk, timeout=600))
    host.run(change("mkdir", "-p", LOG_DIR))
    xml = domain_xml(name, disk, None, None, memory_mib, domain_type=dom.domain_type, serial_log=dom.log)
    host.run(change("sh", "-c", f"cat > {shlex.quote(dom.xml_file)}", stdin=xml))
    host.run(change("virsh", "define", dom.xml_file))
    return dom


def start_and_wait(host: Host, name: str, log: str, timeout: float) -> tuple[float, BootVerdict, str]:
    """``virsh start NAME``, then its serial log file read until the login prompt (or ``timeout``):
    seconds ``virsh start`` took, the verdict (seconds from its return), the console text."""
    t0 = time.monotonic()
    host.run(change("virsh", "start", name))
    started = time.monotonic() - t0
    verdict, text = wait_for_login(host, log, timeout)
    return started, verdict, text


def wait_for_login(host: Host, log: str, timeout: float) -> tuple[BootVerdict, str]:
    """The guest's serial log file (libvirt's ``<log file=...>``) read until a login prompt, a
    fatal stage or ``timeout`` seconds (:func:`kvmops.guests.boot.wait_for_boot`)."""
    offset = [0]

    def read_log(wait: float) -> str:
        time.sleep(wait)
        out = host.run(read("tail", "-c", f"+{offset[0] + 1}", log, ok=(0, 1))).stdout
        offset[0] += len(out.encode())
        return out

    return wait_for_boot(read_log, timeout, poll=3.0)


def why_silent(host: Host, name: str, log: str) -> str:
    """What the lab says about a guest that showed no login prompt: its state and the reason,
    its serial log's size and end, libvirt's log of its QEMU, the lab's load and kernel log (for
    a boot that stalled: issue 23). Reads only; a read that fails says so in its place."""
    reads = {
        "state": ("virsh", "domstate", "--reason", name),
        "serial log (bytes)": ("wc", "-c", log),
        "serial log (end)": ("tail", "-c", "600", log),
        "libvirt's log": ("tail", "-n", "15", f"/var/log/libvirt/qemu/{name}.log"),
        "lab load": ("cat", "/proc/loadavg"),
        "lab kernel": ("dmesg", "--level=err,warn", "--ctime"),
    }
    parts = []
    for what, argv in reads.items():
        r = host.run(read(*argv), check=False)
        text = r.stdout if r.returncode == 0 else f"(exit {r.returncode}) {r.stderr.strip()[:200]}"
        parts.append(f"--- {what}:\n{text.strip()[-1500:]}")
    return "\n".join(parts)


def remove_small_guest(host: Host, dom: SmallDomain) -> None:
    host.run(change("virsh", "destroy", dom.name), check=False)
    host.run(change("virsh", "undefine", dom.name), check=False)
    host.run(change("lvremove", f"{host.site.vg}/{dom.lv}", stdin="y\n"), check=False)
    host.run(change("rm", "-f", dom.log, dom.xml_file), check=False)


def boot_small_guest(host: Host, lab_pid: int, *, name: str = "nestsmall", timeout: float = 300.0,
                     idle_seconds: float = 30.0, say: Say | None = None) -> NestedBoot:
    say = say or (lambda _line: None)
    dom = define_small_guest(host, name)
    try:
        lab_idle = cpu_percent(lab_pid, idle_seconds) if idle_seconds else None
        started, verdict, text = start_and_wait(host, dom.name, dom.log, timeout)
        say(f"nested: virsh start {name} ({dom.domain_type}) returned after {started:.0f} s")
        say(f"nested: {verdict.message}")
        idle = cpu_percent(lab_pid, idle_seconds) if verdict.booted and idle_seconds else None
        return NestedBoot(dom.domain_type, started, verdict, text, idle, lab_idle)
    finally:
        remove_small_guest(host, dom)
