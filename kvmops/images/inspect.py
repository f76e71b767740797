"""Look inside a guest's disk, read-only: OS, fstab, the last lines of its logs, df.

The disk is attached read-only (``kpartx -a -r`` for an LV, ``losetup --read-only`` plus
``partx --add`` for an image file) and its root found and mounted ``-o ro`` by
:func:`kvmops.images.mount.image_root`; both context managers undo everything on every
path out. :func:`read_report` then only reads::

    chroot MNT cat /etc/fstab
    chroot MNT tail -n 30 /var/log/messages        # each log file the image has
    journalctl --directory MNT/var/log/journal --no-pager -n 30 -o short-iso
    df -h -T MNT [MNT/boot ...]

:func:`preview` is the same sequence with placeholders for what only exists once mounted
(the loop device, the mount point): shown where nothing can be mounted (a replay site).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kvmops.cmd import Cmd, read
from kvmops.errors import InvalidInput
from kvmops.images import partitions as pt
from kvmops.images.disk import Disk
from kvmops.images.imagefs import ImageFs
from kvmops.images.mount import MOUNT_BASE, RootFs, filesystems
from kvmops.plan import Plan
from kvmops.runners.base import Runner
from kvmops.units import human

LOG_FILES = ("/var/log/messages", "/var/log/syslog", "/var/log/kern.log", "/var/log/boot.log",
             "/var/log/cloud-init-output.log")
JOURNAL_DIR = "/var/log/journal"


@dataclass(frozen=True)
class DiskReport:
    """What :func:`read_report` found: partitions, the root, and the text of each file read."""

    source: str
    partitions: tuple[tuple[str, str, str, str], ...]  # node, size, filesystem, label
    root: str
    os_release: dict[str, str]
    fstab: str | None
    logs: tuple[tuple[str, str], ...]  # (what, last lines)
    df: str
    notes: tuple[str, ...] = ()
    mountpoint: str = ""
    device: str = ""

    @property
    def os_name(self) -> str:
        return self.os_release.get("PRETTY_NAME") or self.os_release.get("ID", "unknown")


# ----------------------------------------------------------------- builders
def tail_cmd(mountpoint: str, path: str, lines: int) -> Cmd:
    """``chroot MNT tail -n LINES PATH``: the path resolved inside the image (symlinks too)."""
    return read("chroot", mountpoint, "tail", "-n", str(_lines(lines)), path, ok=(0, 1))


def journal_cmd(mountpoint: str, lines: int) -> Cmd:
    """``journalctl --directory MNT/var/log/journal --no-pager -n LINES -o short-iso`` (host's)."""
    return read("journalctl", "--directory", mountpoint + JOURNAL_DIR, "--no-pager", "-n", str(_lines(lines)),
                "-o", "short-iso", ok=(0, 1))


def df_cmd(mountpoints: Sequence[str]) -> Cmd:
    """``df -h -T MNT [MNT/boot ...]``: size and use of the guest's filesystems."""
    return read("df", "-h", "-T", *mountpoints)


def _lines(lines: int) -> int:
    if not 1 <= lines <= 100000:
        raise InvalidInput(f"lines must be 1-100000, got {lines}")
    return lines


# ----------------------------------------------------------------- reading
def read_report(runner: Runner, disk: Disk, root: RootFs, lines: int = 30,
                log_files: Sequence[str] = LOG_FILES) -> DiskReport:
    """Read the facts of a mounted guest root (nothing is written)."""
    parts = tuple((f.partition.node, human(f.partition.size), f.fstype, f.label) for f in filesystems(runner, disk))
    fstab = _cat(runner, root.mountpoint, "/etc/fstab")
    logs: list[tuple[str, str]] = []
    notes: list[str] = []
    for path in log_files:
        res = runner.run(tail_cmd(root.mountpoint, path, lines))
        if res.returncode == 0:
            logs.append((path, res.stdout))
    if _real_dir(ImageFs(runner, root.mountpoint), JOURNAL_DIR):
        res = runner.run(journal_cmd(root.mountpoint, lines))
        if res.returncode == 0 and res.stdout.strip():
            logs.append((f"journal ({JOURNAL_DIR})", res.stdout))
        else:
            notes.append(f"{JOURNAL_DIR} exists but the host's journalctl read nothing from it: "
                         f"{res.stderr.strip() or 'no entries'}")
    if not logs:
        notes.append(f"no log files found ({', '.join(log_files)}, {JOURNAL_DIR}): the guest may log "
                     "to a volatile journal only (Storage=volatile/auto without /var/log/journal)")
    mounts = [root.mountpoint, *(root.path(where) for where, _fs in root.extra)]
    df = runner.run(df_cmd(mounts)).stdout
    where = f"{root.device} ({root.fstype})"
    return DiskReport(disk.source, parts, where, dict(root.os_release), fstab, tuple(logs), df, tuple(notes),
                      root.mountpoint, disk.device)


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


def _real_dir(img: ImageFs, path: str) -> bool:
    """Every component a folder, none a symlink: the host's journalctl reads MNT/PATH, and a
    link in the image (``/var/log/journal -> /run/...``) would lead it into the host's files."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        st = img.stat("/" + "/".join(parts[:i]))
        if st is None or st.kind != "directory":
            return False
    return True


def _cat(runner: Runner, mountpoint: str, path: str) -> str | None:
    res = runner.run(read("chroot", mountpoint, "cat", path, ok=(0, 1)))
    return res.stdout if res.returncode == 0 else None


# ----------------------------------------------------------------- the plan, without mounting
def preview(*, vg: str | None = None, lv: str | None = None, image: str | None = None, lines: int = 30,
            log_files: Sequence[str] = LOG_FILES) -> Plan:
    """The read-only commands an inspection runs, with placeholders (``loopN``, ``pN``, ``MNT``)
    for what exists only once attached. Every command here is read-only."""
    mnt = f"{MOUNT_BASE}/mnt-XXXXXX"
    if image is not None:
        title = f"inspect image {image} read-only"
        plan = Plan(title)
        plan.add("attach the image read-only", pt.losetup_attach(image))
        plan.add("its partition table", pt.sfdisk_json("/dev/loopN"))
        plan.add("add the partitions (/dev/loopNpM)", read("partx", "--add", "/dev/loopN"))
        part = "/dev/loopNpM"
        undo = [("remove the partitions", read("partx", "--delete", "/dev/loopN")),
                ("detach the image", read("losetup", "--detach", "/dev/loopN"))]
    else:
        if vg is None or lv is None:
            raise InvalidInput("preview needs vg and lv, or image")
        dev = pt.lv_mapper_path(vg, lv)
        plan = Plan(f"inspect {vg}/{lv} read-only")
        plan.add("its partition table", pt.sfdisk_json(dev))
        plan.add("map the partitions read-only (guide 4.3)", pt.kpartx_add(dev))
        part = f"{dev}pN"
        undo = [("unmap the partitions", pt.kpartx_delete(dev))]
    plan.add("probe each partition's filesystem", pt.blkid_probe(part))
    plan.add("a fresh mount point", read("mktemp", "-d", mnt))
    plan.add("mount each Linux filesystem read-only until one holds /etc/os-release",
             read("mount", "-t", "FSTYPE", "-o", "ro", part, mnt))
    plan.add("which OS", read("chroot", mnt, "cat", "/etc/os-release"))
    plan.add("the filesystems it mounts", read("chroot", mnt, "cat", "/etc/fstab"))
    for path in log_files:
        plan.add(f"the last {lines} lines of {path}, if present", tail_cmd(mnt, path, lines))
    plan.add(f"the last {lines} journal entries, if {JOURNAL_DIR} is present", journal_cmd(mnt, lines))
    plan.add("size and use of the filesystems", df_cmd([mnt]))
    plan.add("unmount (also /boot below it)", read("umount", "--recursive", mnt))
    plan.add("remove the mount point", read("rmdir", mnt))
    for reason, cmd in undo:
        plan.add(reason, cmd)
    plan.notes.append("every command only reads; unmount and unmap run on every way out, also after a failure")
    return plan


def render(report: DiskReport) -> str:
    """The report as text (sections with a header line each)."""
    out = [f"== disk {report.source}: root {report.root}, {report.os_name}", "", "== partitions"]
    out += [f"{node}  {size}  {fs}  {label}".rstrip() for node, size, fs, label in report.partitions]
    out += ["", "== /etc/os-release"] + [f"{k}={v}" for k, v in report.os_release.items()]
    out += ["", "== /etc/fstab", (report.fstab or "(no /etc/fstab)").rstrip()]
    for what, text in report.logs:
        out += ["", f"== last lines of {what}", text.rstrip() or "(empty)"]
    out += ["", "== df", report.df.rstrip()]
    out += [f"note: {n}" for n in report.notes]
    return "\n".join(out)
