"""Mount a guest's filesystems: read-only unless a step writes; always unmounted.

Mount points are fresh folders ``/run/kvmops/mnt-XXXXXX`` (``mktemp -d``), removed afterwards.
The root filesystem is *found*, not guessed: each partition is probed with ``blkid -p`` for a
Linux filesystem, mounted read-only, and the one whose own ``/etc/os-release`` can be read
through ``chroot`` is the root. ``/boot`` and ``/boot/efi`` from the image's ``/etc/fstab``
are mounted below it when they live on the same disk.

XFS is mounted with ``nouuid``: two guests copied from one image share a filesystem UUID,
and XFS refuses a second mount of the same UUID otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kvmops.cmd import Cmd, change, transient
from kvmops.images import partitions as pt

MOUNT_BASE = "/run/kvmops"
LINUX_FS = ("xfs", "ext4", "ext3", "ext2", "btrfs")
NO_REPLAY = {"xfs": "norecovery", "ext4": "noload", "ext3": "noload"}  # read-only: no journal replay
BOOT_FS = (*LINUX_FS, "vfat")
EXTRA_MOUNTS = ("/boot", "/boot/efi")


@dataclass(frozen=True)
class Filesystem:
    """A partition's filesystem as ``blkid -p`` sees it."""

    partition: pt.Partition
    fstype: str
    uuid: str = ""
    label: str = ""
    partuuid: str = ""


@dataclass(frozen=True)
class RootFs:
    """The image's root filesystem, mounted at ``mountpoint`` (``extra``: /boot etc. below it)."""

    mountpoint: str
    fs: Filesystem
    os_release: dict[str, str]
    writable: bool
    extra: tuple[tuple[str, Filesystem], ...] = field(default=())

    @property
    def device(self) -> str:
        return self.fs.partition.node

    @property
    def fstype(self) -> str:
        return self.fs.fstype

    def path(self, inside: str) -> str:
        """The host path of a path inside the image: ``/etc/passwd`` -> ``MNT/etc/passwd``."""
        return self.mountpoint + "/" + inside.lstrip("/")


# ----------------------------------------------------------------- builders
def mount_cmd(device: str, where: str, fstype: str, *, write: bool = False) -> Cmd:
    """``mount -t xfs -o ro,nouuid,norecovery DEV MNT`` (``rw`` only for writing steps).

    Read-only means no journal replay either (xfs ``norecovery``, ext3/ext4 ``noload``): a
    guest that was forced off leaves a dirty log, which a read-only device cannot replay
    (XFS refuses such a mount), and replaying it would write to the disk.
    """
    opts = ["rw" if write else "ro"]
    if fstype == "xfs":
        opts.append("nouuid")
    if not write and fstype in NO_REPLAY:
        opts.append(NO_REPLAY[fstype])
    argv = ("mount", "-t", fstype, "-o", ",".join(opts), device, where)
    return change(*argv) if write else transient(*argv)


def umount_cmd(where: str) -> Cmd:
    """``umount --recursive MNT``: also whatever was mounted below it (binds, /boot)."""
    return transient("umount", "--recursive", where)


def mount_options(fstype: str, write: bool) -> str:
    return mount_cmd("/dev/x", "/x", fstype, write=write).argv[4]


def parse_os_release(text: str) -> dict[str, str]:
    """``ID="rocky"`` lines into a dict, quotes removed."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key] = value.strip().strip("\"'")
    return out


def parse_fstab(text: str) -> dict[str, str]:
    """Mount point -> device spec (``UUID=...``, ``LABEL=...``, ``PARTUUID=...``, ``/dev/...``)."""
    out = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("#"):
            out[fields[1]] = fields[0]
    return out


def _match(spec: str, have: tuple[Filesystem, ...]) -> Filesystem | None:
    key, sep, value = spec.partition("=")
    value = value.strip("\"'")
    for fs in have:
        if sep and (key, value.lower()) in (
            ("UUID", fs.uuid.lower()), ("LABEL", fs.label.lower()), ("PARTUUID", fs.partuuid.lower())
        ):
            return fs
    return None
