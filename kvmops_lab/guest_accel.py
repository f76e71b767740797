"""Can the lab run its guests with KVM? Decided by trying, once per lab image and machine.

Under TCG, QEMU emulates AMD's SVM, so the lab's kernel loads ``kvm_amd`` and ``/dev/kvm``
exists inside it; on a machine with real KVM, nested virtualization does the same. Then the
lab's guests can be ``<domain type='kvm'>`` as in the guide's template, and a nested guest
reaches its login prompt in about a minute instead of never (TCG inside TCG: a Debian
kernel did not get past its initrd in 447 s). Like the outer probe (accel.py), presence of
``/dev/kvm`` proves nothing: the lab's own kernel is booted under ``-accel kvm`` without an
initrd, and must get as far as looking for its root filesystem (then it panics, as asked).
"""

from __future__ import annotations

import json
from pathlib import Path

from kvmops.cmd import read
from kvmops.host import Host
from kvmops_lab.accel import _qemu_id
from kvmops_lab.paths import LabPaths
from kvmops_lab.progress import Phases

PROBE_SECONDS = 240
# The kernel got through its whole init under KVM: it looked for the root and gave up.
PROBE_MARKERS = ("VFS: Unable to mount root fs", "Kernel panic - not syncing")


def probe_argv(kernel: str, seconds: int = PROBE_SECONDS) -> tuple[str, ...]:
    """``timeout S qemu-system-x86_64 -accel kvm -kernel K`` (no initrd, panics at the root)."""
    return (
        "timeout", str(seconds), "qemu-system-x86_64", "-accel", "kvm", "-machine", "q35", "-cpu", "host",
        "-m", "256", "-smp", "1", "-nodefaults", "-display", "none", "-vga", "none", "-monitor", "none",
        "-serial", "stdio", "-no-reboot", "-kernel", kernel,
        "-append", "console=ttyS0 panic=-1 loglevel=3 root=/dev/nonexistent",
    )


def probe_passed(output: str) -> bool:
    return any(m in output for m in PROBE_MARKERS)


def cache_key(paths: LabPaths, image_dir: str, outer_accel: str) -> str:
    import os

    return f"lab-guests|{os.uname().release}|{_qemu_id()}|{outer_accel}|{Path(image_dir).name}"


def _cache(paths: LabPaths) -> dict[str, str]:
    try:
        data = json.loads(paths.accel_cache.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def decide_guest_domain_type(host: Host, paths: LabPaths, image_dir: str, outer_accel: str, say: Phases) -> str:
    """``kvm`` when a KVM guest boots inside the lab, else ``qemu``; cached per image and machine."""
    key = cache_key(paths, image_dir, outer_accel)
    cached = _cache(paths).get(key)
    if cached in ("kvm", "qemu"):
        say(f"guests: domain type {cached} (probed earlier for this lab image)")
        return str(cached)
    if host.run(read("test", "-c", "/dev/kvm", ok=(0, 1))).returncode != 0:
        domain_type = "qemu"
        say("guests: no /dev/kvm inside the lab: guests run under TCG (domain type qemu)")
    else:
        say("guests: /dev/kvm exists inside the lab; booting the lab kernel under KVM to be sure (~1 min)")
        kernel = f"/boot/vmlinuz-{host.run(read('uname', '-r')).stdout.strip()}"
        res = host.run(read(*probe_argv(kernel), ok=(0, 1, 124), timeout=PROBE_SECONDS + 30))
        domain_type = "kvm" if probe_passed(res.stdout) else "qemu"
        tail = (res.stdout.strip().splitlines() or ["(no output)"])[-1][:100]
        say("guests: KVM boots a kernel inside the lab: domain type kvm" if domain_type == "kvm"
            else f"guests: KVM did not boot the kernel ({tail}): domain type qemu (TCG, slow)")
    data = _cache(paths)
    data[key] = domain_type
    paths.accel_cache.write_text(json.dumps(data, indent=1) + "\n")
    return domain_type
