"""Loop devices and scratch LVM for the integration tier, always cleaned up."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def sh(*argv: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, env=env)


@contextmanager
def loop_device(image: Path, size: str = "64M") -> Iterator[str]:
    """A loop device over a sparse file; detached on every exit path."""
    if not image.exists():
        sh("truncate", "-s", size, str(image))
    dev = sh("losetup", "--find", "--show", str(image)).stdout.strip()
    try:
        yield dev
    finally:
        sh("partx", "-d", dev, check=False)
        sh("losetup", "-d", dev, check=False)


def has_device_mapper() -> bool:
    """True when the kernel has device-mapper (LVM activation, snapshots, kpartx -a)."""
    return os.path.exists("/dev/mapper/control") and "device-mapper" in Path("/proc/misc").read_text()


def lvm_conf(folder: Path, device: str) -> dict[str, str]:
    """An LVM_SYSTEM_DIR that sees only ``device`` and, without device-mapper, never activates.

    Returns the environment to run LVM (and kvmops' runners) with.
    """
    activation = "" if has_device_mapper() else "    activation = 0\n"
    (folder / "lvm.conf").write_text(
        "devices {\n"
        f'    filter = [ "a|^{device}$|", "r|.*|" ]\n'
        "    use_devicesfile = 0\n"
        "    obtain_device_list_from_udev = 0\n"
        "}\n"
        "global {\n"
        f"{activation}"
        "    use_lvmetad = 0\n"
        "}\n"
        "activation {\n    udev_sync = 0\n    udev_rules = 0\n}\n"
    )
    return {**os.environ, "LVM_SYSTEM_DIR": str(folder), "LVM_SUPPRESS_FD_WARNINGS": "1"}


@contextmanager
def scratch_vg(tmp: Path, vg: str, size: str = "256M") -> Iterator[dict[str, str]]:
    """A VG on a loop-backed PV, visible only through the returned LVM environment.

    Sets LVM_SYSTEM_DIR in os.environ for the duration (kvmops' runners inherit it), and
    removes VG, PV and loop device afterwards.
    """
    with loop_device(tmp / "pv.img", size) as dev:
        env = lvm_conf(tmp, dev)
        old = os.environ.get("LVM_SYSTEM_DIR")
        os.environ["LVM_SYSTEM_DIR"] = str(tmp)
        try:
            sh("pvcreate", "-q", dev, env=env)
            sh("vgcreate", "-q", vg, dev, env=env)
            yield env
        finally:
            sh("vgremove", "-q", "-ff", vg, check=False, env=env)  # test teardown, not kvmops
            sh("pvremove", "-q", "-ff", dev, check=False, env=env)
            if old is None:
                os.environ.pop("LVM_SYSTEM_DIR", None)
            else:
                os.environ["LVM_SYSTEM_DIR"] = old


def disk_node(folder: Path, device: str, name: str = "disk") -> str:
    """A block device node for ``device`` (a loop device) in ``folder``: the same disk at a path
    inside a site's ``file_disk_dir``, where the safety gate lets kvmops write a disk that is no
    LV of the site (this machine has no device-mapper, so no /dev/VG/LV). Removed with the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    node = folder / name
    os.mknod(node, 0o600 | stat.S_IFBLK, os.stat(device).st_rdev)
    return str(node)
