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


def boot_small_guest(host: Host, lab_pid: int, *, name: str = "nestsmall", timeout: float = 300.0,
                     idle_seconds: float = 30.0, say: Say | None = None) -> NestedBoot:
    say = say or (lambda _line: None)
    lv = host.site.guest_lv(name)
    disk = f"/dev/{host.site.vg}/{lv}"
    log = f"{LOG_DIR}/{name}-serial.log"
    xml_file = f"/tmp/kvmops-{name}.xml"
    _remove(host, name, lv, log, xml_file)
    try:
        host.run(change("lvcreate", "--name", lv, "--size", "1g", "--wipesignatures", "y", "--yes", host.site.vg))
        host.run(change("qemu-img", "convert", "-n", "-O", "raw", "-f", "raw", GUEST_IMAGE_FILE, disk, timeout=600))
        host.run(change("mkdir", "-p", LOG_DIR))
        xml = domain_xml(name, disk, None, None, 512, domain_type=host.site.domain_type, serial_log=log)
        host.run(change("sh", "-c", f"cat > {shlex.quote(xml_file)}", stdin=xml))
        host.run(change("virsh", "define", xml_file))
        lab_idle = cpu_percent(lab_pid, idle_seconds) if idle_seconds else None
        t0 = time.monotonic()
        host.run(change("virsh", "start", name))
        started = time.monotonic() - t0
        say(f"nested: virsh start {name} ({host.site.domain_type}) returned after {started:.0f} s")
        offset = [0]

        def read_log(wait: float) -> str:
            time.sleep(wait)
            out = host.run(read("tail", "-c", f"+{offset[0] + 1}", log, ok=(0, 1))).stdout
            offset[0] += len(out.encode())
            return out

        verdict, text = wait_for_boot(read_log, timeout, poll=3.0)
        say(f"nested: {verdict.message}")
        idle = cpu_percent(lab_pid, idle_seconds) if verdict.booted and idle_seconds else None
        return NestedBoot(host.site.domain_type, started, verdict, text, idle, lab_idle)
    finally:
        _remove(host, name, lv, log, xml_file)


def _remove(host: Host, name: str, lv: str, log: str, xml_file: str) -> None:
    host.run(change("virsh", "destroy", name), check=False)
    host.run(change("virsh", "undefine", name), check=False)
    host.run(change("lvremove", f"{host.site.vg}/{lv}", stdin="y\n"), check=False)
    host.run(change("rm", "-f", log, xml_file), check=False)
