"""The realistic cloud image with predictable interface names (issue 24), made inside the lab.

How the lab's image chooses its NIC names: its kernel line (``/boot/grub/grub.cfg``, and
``/etc/default/grub`` for a later ``grub-mkconfig``) has ``net.ifnames=0``, as RHEL's
GenericCloud images have it, so the kernel's ``eth0`` stays. Without it, systemd-udevd names
the NIC by its PCI place: ``enp1s0`` for the first NIC of a q35 guest under libvirt (Debian's
and Ubuntu's cloud images). :func:`ensure_predictable_image` makes that variant from the lab's
cloud image without copying it (the lab's root has no room for a second raw copy): a qcow2
overlay on it, the two files edited through the kernel's NBD client, every mapping undone on
every path out::

    qemu-img create -f qcow2 -F raw -b /var/lib/kvmops/images/cloud.raw cloud-enp.qcow2.tmp
    modprobe nbd max_part=8; qemu-nbd --connect=/dev/nbd7 --format=qcow2 cloud-enp.qcow2.tmp
    mount -t xfs -o nouuid /dev/nbd7p1 MNT; (both files without net.ifnames=0); umount MNT
    qemu-nbd --disconnect /dev/nbd7; mv cloud-enp.qcow2.tmp cloud-enp.qcow2

guest-create copies it onto the guest's LV like any qcow2 image (the chain flattened).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator

from kvmops.cmd import change, read
from kvmops.host import Host
from kvmops_lab.errors import LabError
from kvmops_lab.prepare import CLOUD_IMAGE_FILE

PREDICTABLE_IMAGE_FILE = "/var/lib/kvmops/images/cloud-enp.qcow2"
KERNEL_FILES = ("/boot/grub/grub.cfg", "/etc/default/grub")
NBD_DEVICE = "/dev/nbd7"  # one the lab uses for nothing else (guestboot's qemu-nbd is a server, no device)
_IFNAMES = re.compile(r"[ \t]+net\.ifnames=0(?=[\s\"']|$)", re.MULTILINE)
Say = Callable[[str], None]


def without_ifnames(text: str) -> str:
    """The text with every ``net.ifnames=0`` taken off its kernel lines."""
    return _IFNAMES.sub("", text)


def _exists(host: Host, path: str) -> bool:
    return host.run(read("test", "-e", path, ok=(0, 1))).returncode == 0


def ensure_predictable_image(host: Host, say: Say = print, source: str = CLOUD_IMAGE_FILE,
                             target: str = PREDICTABLE_IMAGE_FILE) -> str:
    """``target``: the lab's cloud image with predictable NIC names (made once per lab)."""
    if _exists(host, target):
        say(f"ifnames: {target} exists already")
        return target
    if not _exists(host, source):
        raise LabError(f"the lab has no cloud image {source}: start it with the cloud image (kvmops lab up)")
    tmp = target + ".tmp"
    host.run(change("rm", "-f", "--", tmp))
    host.run(change("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", source, tmp))
    t0 = time.monotonic()
    with _nbd(host, tmp) as part, _mounted(host, part) as root:
        for path in KERNEL_FILES:
            inside = root + path
            text = host.run(read("cat", "--", inside)).stdout
            edited = without_ifnames(text)
            if edited == text:
                raise LabError(f"{path} in {source} has no net.ifnames=0: the image names its NICs otherwise already")
            host.run(change("install", "-m", "0644", "/dev/stdin", inside, stdin=edited))
            if "net.ifnames=0" in host.run(read("cat", "--", inside)).stdout:
                raise LabError(f"{path}: net.ifnames=0 is still there after the edit")
    host.run(change("mv", "-f", "--", tmp, target))
    say(f"ifnames: {target} made ({', '.join(KERNEL_FILES)} without net.ifnames=0) in {time.monotonic() - t0:.0f} s")
    return target


@contextlib.contextmanager
def _nbd(host: Host, image: str) -> Iterator[str]:
    """The image on the kernel's NBD device; its first partition's device. Disconnected after."""
    host.run(change("modprobe", "nbd", "max_part=8"))
    host.run(change("qemu-nbd", "--disconnect", NBD_DEVICE), check=False)  # one left by a killed run
    host.run(change("qemu-nbd", f"--connect={NBD_DEVICE}", "--format=qcow2", image, timeout=60))
    try:
        part = f"{NBD_DEVICE}p1"
        for _ in range(50):
            if host.run(read("test", "-b", part, ok=(0, 1))).returncode == 0:
                break
            host.run(change("partx", "-a", NBD_DEVICE), check=False)
            time.sleep(0.2)
        else:
            raise LabError(f"{part} did not appear after qemu-nbd --connect")
        yield part
    finally:
        host.run(change("qemu-nbd", "--disconnect", NBD_DEVICE), check=False)


@contextlib.contextmanager
def _mounted(host: Host, device: str) -> Iterator[str]:
    """``device`` (xfs) mounted read-write on a fresh folder (``nouuid``: the cloud image's
    filesystem UUID may be mounted already from a guest's LV); unmounted and removed after."""
    mnt = host.run(change("mktemp", "-d", "/run/kvmops-ifnames-XXXXXX")).stdout.strip()
    try:
        host.run(change("mount", "-t", "xfs", "-o", "nouuid", device, mnt))
        try:
            yield mnt
        finally:
            host.run(change("umount", mnt))
    finally:
        host.run(change("rmdir", mnt), check=False)
