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

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from kvmops.cmd import Cmd, change, read, transient
from kvmops.errors import InvalidInput
from kvmops.images import partitions as pt
from kvmops.images.disk import Disk, _undo
from kvmops.runners.base import Runner

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


# ----------------------------------------------------------------- contexts
@contextmanager
def temp_dir(runner: Runner) -> Iterator[str]:
    """``mktemp -d /run/kvmops/mnt-XXXXXX``; ``rmdir`` afterwards (only if empty: never rm -r)."""
    runner.run(transient("mkdir", "-p", "-m", "700", MOUNT_BASE))
    where = runner.run(transient("mktemp", "-d", f"{MOUNT_BASE}/mnt-XXXXXX")).stdout.strip()
    if not where.startswith(MOUNT_BASE + "/mnt-"):
        raise InvalidInput(f"mktemp gave no mount point: {where!r}")
    try:
        yield where
    finally:
        _undo(runner, [transient("rmdir", where)])


@contextmanager
def mounted(runner: Runner, device: str, fstype: str, *, write: bool = False) -> Iterator[str]:
    """Mount ``device`` on a fresh folder; unmounted (recursively) and removed afterwards."""
    with temp_dir(runner) as where:
        runner.run(mount_cmd(device, where, fstype, write=write))
        try:
            yield where
        finally:
            _undo(runner, [umount_cmd(where)])


def filesystems(runner: Runner, disk: Disk) -> tuple[Filesystem, ...]:
    """Every partition's filesystem (``blkid -p``); partitions without one are left out."""
    found = []
    for p in disk.partitions:
        info = pt.parse_blkid_export(runner.run(pt.blkid_probe(p.node)).stdout)
        if info.get("TYPE"):
            found.append(Filesystem(p, info["TYPE"], info.get("UUID", ""), info.get("LABEL", ""),
                                    info.get("PART_ENTRY_UUID", "")))
    return tuple(found)


def read_os_release(runner: Runner, where: str) -> dict[str, str] | None:
    """``chroot MNT cat /etc/os-release``: the image's own file, symlinks resolved inside it."""
    res = runner.run(read("chroot", where, "cat", "/etc/os-release", ok=(0, 1, 125, 126, 127)))
    return parse_os_release(res.stdout) if res.returncode == 0 else None


def parse_os_release(text: str) -> dict[str, str]:
    """``ID="rocky"`` lines into a dict, quotes removed."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key] = value.strip().strip("\"'")
    return out


@contextmanager
def image_root(runner: Runner, disk: Disk, *, write: bool = False) -> Iterator[RootFs]:
    """Find and mount the root filesystem (plus /boot, /boot/efi of the same disk)."""
    linux = [f for f in filesystems(runner, disk) if f.fstype in LINUX_FS]
    if not linux:
        raise InvalidInput(f"{disk.source}: no partition holds a Linux filesystem ({', '.join(LINUX_FS)})")
    if write and not disk.writable:
        raise InvalidInput(f"{disk.source} is attached read-only: attach it with write=True to change it")
    for fs in sorted(linux, key=lambda f: -f.partition.sectors):
        with ExitStack() as stack:
            where = stack.enter_context(mounted(runner, fs.partition.node, fs.fstype))
            release = read_os_release(runner, where)
            if release is None:
                continue
            if write:  # a fresh read-write mount: a norecovery mount cannot be remounted rw
                runner.run(umount_cmd(where))
                runner.run(mount_cmd(fs.partition.node, where, fs.fstype, write=True))
            extra = _mount_extra(runner, disk, where, write)
            yield RootFs(where, fs, release, write, extra)
            return
    raise InvalidInput(
        f"{disk.source}: none of the filesystems ({', '.join(f.partition.node for f in linux)}) holds "
        "/etc/os-release: no Linux root here (a root on LVM inside the image is not supported)"
    )


def _mount_extra(runner: Runner, disk: Disk, where: str,
                 write: bool) -> tuple[tuple[str, Filesystem], ...]:
    """Mount /boot and /boot/efi below the root when the image's fstab puts them on this disk.

    They are unmounted by the root's ``umount --recursive``.
    """
    res = runner.run(read("chroot", where, "cat", "/etc/fstab", ok=(0, 1)))
    if res.returncode != 0:
        return ()
    wanted = parse_fstab(res.stdout)
    have = filesystems(runner, disk)
    done = []
    for target in EXTRA_MOUNTS:
        spec = wanted.get(target)
        fs = _match(spec, have) if spec else None
        if fs is None or fs.fstype not in BOOT_FS:
            continue
        runner.run(mount_cmd(fs.partition.node, where + target, fs.fstype, write=write))
        done.append((target, fs))
    return tuple(done)


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
