"""The lab: a faithful KVM host (Debian bookworm, LVM, device-mapper, NetworkManager, libvirt)
booted with QEMU on this machine and reached over SSH on 127.0.0.1.

Public API::

    from kvmops_lab import LabPaths, up, down, destroy, status, site_path

``up()`` builds (or reuses) the cached image, boots it, waits for ``ssh true``, prepares VG
``rl_build`` and writes the lab site file; ``kvmops.host.connect(load_site(site_path()))``
then runs commands in the lab.
"""

from kvmops_lab.errors import LabError
from kvmops_lab.paths import LabPaths
from kvmops_lab.vm import destroy, down, power_cut, site_path, status, up

__all__ = ["LabError", "LabPaths", "destroy", "down", "power_cut", "site_path", "status", "up"]
