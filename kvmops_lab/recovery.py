"""The power outage of issue 14, made in the lab: small guests running, a snapshot merge under
way, the lab's QEMU killed (:func:`kvmops_lab.vm.power_cut`), the lab booted again on the disks
it left (``up(keep_disks=True)``); then the host-recovery runbook has its incident to solve
(tests/lab/test_host_recovery_lab.py).

The guests are the demo's small guest (busybox, a tiny initramfs: a login prompt ~40-100 s
after ``virsh start`` in the lab), each on its own LV, defined like the guide's template with a
serial log file, autostart as given. The merge: a snapshot of one guest's LV, then writes to
that LV past the guest's filesystem (the guest's own data is not touched), then ``lvconvert
--merge`` while the guest runs: LVM defers it to the LV's next activation, which is the boot
after the outage. That region's content tells afterwards whether the merge was done (the
snapshot's zeros back) and :func:`qemu_starts` counts each guest's starts in libvirt's log.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kvmops.cmd import change, read
from kvmops.guests.history import Run, log_path, parse_qemu_log
from kvmops.host import Host
from kvmops_lab.prepare import GUEST_IMAGE_FILE
from kvmops_lab.proofguest import domain_xml, drop_domain_and_lvs

Say = Callable[[str], None]
LOG_DIR = "/var/log/kvmops"
MARK_AT_MIB = 600  # the changed region: past the 64 MiB image, inside the 1 GiB LV
MARK_MIB = 200


@dataclass(frozen=True)
class SmallGuest:
    name: str
    lv: str  # VG/LV
    autostart: bool


def make_guest(host: Host, name: str, *, autostart: bool, memory_mib: int = 256) -> SmallGuest:
    """An LV with the small guest's image, the domain defined (not started)."""
    remove_guest(host, name)
    vg, lv = host.site.vg, host.site.guest_lv(name)
    disk = f"/dev/{vg}/{lv}"
    host.run(change("lvcreate", "--name", lv, "--size", "1g", "--wipesignatures", "y", "--yes", vg))
    host.run(change("qemu-img", "convert", "-n", "-O", "raw", "-f", "raw", GUEST_IMAGE_FILE, disk, timeout=600))
    host.run(change("mkdir", "-p", LOG_DIR, host.site.xml_dir))
    xml = domain_xml(name, disk, None, None, memory_mib, domain_type=host.site.domain_type,
                     serial_log=serial_log(name))
    xml_file = f"{host.site.xml_dir.rstrip('/')}/{name}.xml"
    host.run(change("sh", "-c", f"cat > {shlex.quote(xml_file)}", stdin=xml))
    host.run(change("virsh", "define", xml_file))
    if autostart:
        host.run(change("virsh", "autostart", name))
    return SmallGuest(name, f"{vg}/{lv}", autostart)


def serial_log(name: str) -> str:
    """The file libvirt writes the guest's serial console to (``<log file=...>``, new each start)."""
    return f"{LOG_DIR}/{name}-serial.log"


def forget_serial_logs(host: Host, names: Iterable[str]) -> None:
    """The guests' serial log files removed (their QEMUs keep writing to the unlinked files) and
    synced to the lab's disk: after a power cut, a log exists only once libvirt started that guest
    again, and a login prompt in it is of that boot."""
    host.run(change("rm", "-f", *(serial_log(n) for n in names)))
    host.run(change("sync"))


def remove_guest(host: Host, name: str) -> None:
    drop_domain_and_lvs(host, name)
    host.run(change("rm", "-f", f"{host.site.xml_dir.rstrip('/')}/{name}.xml", serial_log(name),
                    log_path(name)), check=False)


def region_digest(host: Host, lv: str) -> str:
    """sha256 of the changed region of ``VG/LV`` (past the guest's filesystem)."""
    out = host.run(read("sh", "-c", f"dd if=/dev/{shlex.quote(lv)} bs=1M skip={MARK_AT_MIB} count={MARK_MIB} "
                                     "iflag=direct status=none | sha256sum")).stdout
    return out.split()[0]


def pending_merge(host: Host, guest: SmallGuest, say: Say) -> str:
    """Snapshot, then the region overwritten (random data), then ``lvconvert --merge`` while the
    guest runs: deferred to the next activation. Returns the snapshot's VG/LV."""
    vg, lv = guest.lv.split("/")
    snap = f"{lv}-before"
    host.run(change("lvcreate", "--snapshot", "--name", snap, "--size", f"{MARK_MIB + 64}m", guest.lv))
    host.run(change("dd", "if=/dev/urandom", f"of=/dev/{guest.lv}", "bs=1M", f"seek={MARK_AT_MIB}",
                    f"count={MARK_MIB}", "oflag=direct", "status=none", timeout=900))
    res = host.run(change("lvconvert", "--merge", f"{vg}/{snap}"))
    say(f"recovery: lvconvert --merge {vg}/{snap}: {(res.stdout + res.stderr).strip()}")
    return f"{vg}/{snap}"


def qemu_runs(host: Host, name: str) -> tuple[Run, ...]:
    """The guest's runs as libvirt's own log records them (start, and stop if any), oldest first."""
    return parse_qemu_log(host.run(read("cat", log_path(name), ok=(0, 1))).stdout)


def running(host: Host) -> list[str]:
    return host.run(read("virsh", "list", "--name")).stdout.split()
