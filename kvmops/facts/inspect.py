"""TODO docstring."""

from __future__ import annotations

from collections.abc import Sequence

from kvmops.cmd import read
from kvmops.facts.imagefs import gather
from kvmops.facts.mount import filesystems
from kvmops.images.disk import Disk
from kvmops.images.inspect import (
    JOURNAL_DIR,
    LOG_FILES,
    DiskReport,
    _AccountsWanted,
    _Stats,
    account_rows,
    df_cmd,
    journal_cmd,
    tail_cmd,
)
from kvmops.images.mount import RootFs
from kvmops.runners.base import Runner
from kvmops.units import human


# ----------------------------------------------------------------- reading
def read_report(runner: Runner, disk: Disk, root: RootFs, lines: int = 30,
                log_files: Sequence[str] = LOG_FILES, table: str = "") -> DiskReport:
    """Read the facts of a mounted guest root (nothing is written)."""
    parts = tuple((f.partition.node, human(f.partition.size), f.fstype, f.label) for f in filesystems(runner, disk))
    img = gather(runner, root.mountpoint, [_AccountsWanted()])
    fstab = _cat(runner, root.mountpoint, "/etc/fstab")
    logs, notes = _logs(runner, root, lines, log_files)
    mounts = [root.mountpoint, *(root.path(where) for where, _fs in root.extra)]
    df = runner.run(df_cmd(mounts)).stdout
    where = f"{root.device} ({root.fstype})"
    return DiskReport(disk.source, parts, where, dict(root.os_release), fstab, tuple(logs), df, tuple(notes),
                      root.mountpoint, disk.device, table, account_rows(img))


def _logs(runner: Runner, root: RootFs, lines: int,
          log_files: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """The journal kept on the disk, when there is one with entries; else the log files."""
    notes: list[str] = []
    if _real_dir(runner, root.mountpoint, JOURNAL_DIR):
        res = runner.run(journal_cmd(root.mountpoint, lines))
        if res.returncode == 0 and res.stdout.strip() and "-- No entries --" not in res.stdout:
            return [(f"journal ({JOURNAL_DIR})", res.stdout)], notes
        notes.append(f"{JOURNAL_DIR} exists but the host's journalctl read nothing from it "
                     f"({res.stderr.strip() or 'no entries'}): the log files instead")
    logs = []
    for path in log_files:
        res = runner.run(tail_cmd(root.mountpoint, path, lines))
        if res.returncode == 0:
            logs.append((path, res.stdout))
    if not logs:
        notes.append(f"no log files found ({JOURNAL_DIR}, {', '.join(log_files)}): the guest may log to a "
                     "volatile journal only (Storage=volatile/auto without /var/log/journal)")
    return logs, notes


def leftovers(runner: Runner, report: DiskReport) -> list[str]:
    """What of an inspection is still there (should be nothing): its mount point in
    ``/proc/mounts`` or on disk, its partition devices, its loop device."""
    left = []
    mounts = runner.run(read("cat", "/proc/mounts")).stdout
    if report.mountpoint and any(f" {report.mountpoint}" in ln for ln in mounts.splitlines()):
        left.append(f"{report.mountpoint} is still mounted")
    if report.mountpoint and runner.run(read("test", "-e", report.mountpoint, ok=(0, 1))).returncode == 0:
        left.append(f"mount point {report.mountpoint} still exists")
    for node, *_ in report.partitions:
        if runner.run(read("test", "-e", node, ok=(0, 1))).returncode == 0:
            left.append(f"partition device {node} is still there")
    if report.device.startswith("/dev/loop"):
        held = runner.run(read("losetup", "--list", "--noheadings", "-O", "NAME,BACK-FILE", report.device,
                               ok=(0, 1))).stdout
        if report.source in held:
            left.append(f"{report.device} still holds {report.source}")
    return left


def _real_dir(runner: Runner, mountpoint: str, path: str) -> bool:
    """Every component a folder, none a symlink: the host's journalctl reads MNT/PATH, and a
    link in the image (``/var/log/journal -> /run/...``) would lead it into the host's files."""
    parts = path.strip("/").split("/")
    paths = ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    img = gather(runner, mountpoint, [_Stats(tuple(paths))])
    return all((st := img.stat(p)) is not None and st.kind == "directory" for p in paths)


def _cat(runner: Runner, mountpoint: str, path: str) -> str | None:
    res = runner.run(read("chroot", mountpoint, "cat", path, ok=(0, 1)))
    return res.stdout if res.returncode == 0 else None
