"""TODO docstring."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from kvmops.cmd import read, transient
from kvmops.errors import InvalidInput
from kvmops.facts.disk import _undo
from kvmops.images import partitions as pt
from kvmops.images.disk import Disk
from kvmops.images.mount import (
    BOOT_FS,
    EXTRA_MOUNTS,
    LINUX_FS,
    MOUNT_BASE,
    Filesystem,
    RootFs,
    _match,
    mount_cmd,
    parse_fstab,
    parse_os_release,
    umount_cmd,
)
from kvmops.runners.base import Runner


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
