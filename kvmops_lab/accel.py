"""KVM or TCG? Decided by trying: a short KVM boot of the lab kernel must reach its initramfs.

``/dev/kvm`` may exist and still be unable to boot a stock kernel (a paravirtual KVM), so its
presence proves nothing. The answer is cached per host kernel, lab kernel and QEMU binary.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from pathlib import Path

from kvmops_lab.paths import ImagePaths, LabPaths
from kvmops_lab.progress import Phases
from kvmops_lab.qemu import probe_argv, probe_ok

PROBE_SECONDS = 25.0


def probe_key(img: ImagePaths) -> str:
    version = (img.dir / "kernel-version").read_text().strip() if (img.dir / "kernel-version").exists() else "?"
    return f"{os.uname().release}|{version}|{_qemu_id()}"


def _qemu_id() -> str:
    from shutil import which

    path = which("qemu-system-x86_64") or "?"
    try:
        return f"{path}:{int(Path(path).stat().st_mtime)}"
    except OSError:
        return path


def decide_accel(paths: LabPaths, img: ImagePaths, say: Phases) -> str:
    """``kvm`` when a KVM boot of the lab kernel works here, else ``tcg``."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        say("accel: no usable /dev/kvm: TCG (software emulation)")
        return "tcg"
    key = probe_key(img)
    cached = _cached(paths.accel_cache).get(key)
    if cached in ("kvm", "tcg"):
        say(f"accel: {cached.upper()} (probed earlier on this host)")
        return str(cached)
    say(f"accel: /dev/kvm exists; trying a {PROBE_SECONDS:.0f}s KVM boot of the lab kernel")
    ok, why = probe_kvm(img)
    accel = "kvm" if ok else "tcg"
    say(f"accel: {'KVM works' if ok else 'KVM cannot boot the kernel (' + why + '): TCG'}")
    data = _cached(paths.accel_cache)
    data[key] = accel
    paths.accel_cache.write_text(json.dumps(data, indent=1) + "\n")
    return accel


def _cached(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def probe_kvm(img: ImagePaths, seconds: float = PROBE_SECONDS) -> tuple[bool, str]:
    """Boot the kernel under KVM; True once its serial output shows the initramfs started."""
    proc = subprocess.Popen(probe_argv(str(img.kernel), str(img.initrd), "kvm"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = b""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
                if probe_ok(out.decode(errors="replace")):
                    return True, "reached the initramfs"
        text = out.decode(errors="replace").strip().splitlines()
        return False, (text[-1][:120] if text else f"no output in {seconds:.0f}s")
    finally:
        sel.close()
        proc.kill()
        proc.wait()
        proc.stdout.close()
