"""Look inside a guest's disk, read-only: partition table, OS, fstab, accounts, logs, df.

First the partition table the inspection is about to map (``kpartx -l`` for an LV, guide
4.3; ``partx --show`` for an image file). The disk is then attached read-only (``kpartx -a
-r`` for an LV, ``losetup --read-only`` plus ``partx --add`` for an image file) and its root
found and mounted ``-o ro`` by :func:`kvmops.images.mount.image_root`; both context managers
undo everything on every path out. :func:`read_report` then only reads::

    chroot MNT cat /etc/fstab
    chroot MNT cat /etc/passwd /etc/shadow, each login user's ~/.ssh/authorized_keys
    journalctl --directory MNT/var/log/journal --no-pager -n 30 -o short-iso   # when kept on disk
    chroot MNT tail -n 30 /var/log/messages        # else: each log file the image has
    df -h -T MNT [MNT/boot ...]

Accounts show whether a password is set or locked, never a hash; authorized keys by their
comments (whose keys they are) and the file's owner and mode.

:func:`preview` is the same sequence with placeholders for what only exists once mounted
(the loop device, the mount point): shown before it runs, and where nothing can be mounted
(a replay site).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kvmops.cmd import Cmd, read
from kvmops.errors import InvalidInput
from kvmops.images import content as c
from kvmops.images import partitions as pt
from kvmops.images.imagefs import ImageFacts, ImageWanted
from kvmops.images.mount import MOUNT_BASE
from kvmops.plan import Plan

LOG_FILES = ("/var/log/messages", "/var/log/syslog", "/var/log/kern.log", "/var/log/boot.log",
             "/var/log/cloud-init-output.log")
JOURNAL_DIR = "/var/log/journal"
NO_LOGIN = ("/sbin/nologin", "/usr/sbin/nologin", "/bin/false", "/usr/bin/false", "/bin/sync")


@dataclass(frozen=True)
class AccountRow:
    """A login account of the image: no secret, only what an admin needs to get in."""

    name: str
    uid: int
    shell: str
    password: str  # set, locked, none, EMPTY, no shadow entry
    keys: tuple[str, ...]  # the comments of its authorized keys (whose keys they are)
    keys_file: str  # the authorized_keys file's mode and owner, or why there is none


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
    table: str = ""  # kpartx -l / partx --show: what was about to be mapped
    accounts: tuple[AccountRow, ...] = ()

    @property
    def os_name(self) -> str:
        return self.os_release.get("PRETTY_NAME") or self.os_release.get("ID", "unknown")


# ----------------------------------------------------------------- builders
def table_cmd(*, device: str | None = None, image: str | None = None) -> Cmd:
    """The partition table about to be mapped: ``kpartx -l -p p DEV`` (an LV, guide 4.3) or
    ``partx --show IMG`` (an image file: kpartx -l would attach a loop device to list it)."""
    if image is not None:
        return read("partx", "--show", "--", image)
    if device is None:
        raise InvalidInput("table_cmd needs the LV's device or an image file")
    return pt.kpartx_list(device)


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


# ----------------------------------------------------------------- accounts (pure)
@dataclass(frozen=True)
class _AccountsWanted:
    """What the accounts section reads: passwd, shadow, then each login user's keys."""

    def wants(self, img: ImageFacts) -> ImageWanted:
        want = ImageWanted.of(files=("/etc/passwd", "/etc/shadow"))
        for acc in login_accounts(img.peek("/etc/passwd")):
            keys = _keys_path(acc)
            if keys:
                want |= ImageWanted.of(files=(keys,), stats=(keys,))
        return want


def login_accounts(passwd: str | None) -> list[c.Account]:
    """Accounts one can log in as: root and users (uid >= 1000, not nobody) with a real shell."""
    accounts = c.parse_passwd(passwd or "").values()
    return [a for a in accounts if (a.uid == 0 or 1000 <= a.uid < 65534) and a.shell not in NO_LOGIN]


def _keys_path(acc: c.Account) -> str | None:
    home = acc.home.rstrip("/")
    return f"{home}/.ssh/authorized_keys" if acc.home.startswith("/") and ".." not in home.split("/") else None


def account_rows(img: ImageFacts) -> tuple[AccountRow, ...]:
    """The login accounts with password state (set/locked, never the hash) and their keys."""
    shadow = img.read("/etc/shadow")
    rows = []
    for acc in login_accounts(img.read("/etc/passwd")):
        path = _keys_path(acc)
        text = img.read(path) if path else None
        st = img.stat(path) if path else None
        comments = tuple(key_comment(ln) for ln in (text or "").splitlines()
                         if ln.strip() and not ln.lstrip().startswith("#"))
        if st is None:
            where = "no authorized_keys"
        else:
            owner = "" if (st.uid, st.gid) == (acc.uid, acc.gid) else " (NOT the user's: sshd ignores it)"
            where = f"{path}: {st.mode:o} {st.uid}:{st.gid}{owner}"
        state = c.password_state(shadow, acc.name) if shadow is not None else "no /etc/shadow"
        rows.append(AccountRow(acc.name, acc.uid, acc.shell, state, comments, where))
    return tuple(rows)


def key_comment(line: str) -> str:
    """Whose key a line of authorized_keys is: its comment (``admin@example``), else its type."""
    parts = line.split()
    for i, p in enumerate(parts):
        if p in c.KEY_TYPES:
            return " ".join(parts[i + 2:]) or f"{p} key without comment"
    return "not a key line"


@dataclass(frozen=True)
class _Stats:
    paths: tuple[str, ...]

    def wants(self, img: ImageFacts) -> ImageWanted:
        return ImageWanted.of(stats=self.paths)


# ----------------------------------------------------------------- the plan, before mounting
def preview(*, vg: str | None = None, lv: str | None = None, image: str | None = None, lines: int = 30,
            log_files: Sequence[str] = LOG_FILES) -> Plan:
    """The read-only commands an inspection runs, with placeholders (``loopN``, ``pN``, ``MNT``)
    for what exists only once attached. Every command here is read-only."""
    mnt = f"{MOUNT_BASE}/mnt-XXXXXX"
    if image is not None:
        plan = Plan(f"inspect image {image} read-only")
        plan.add("the partition table about to be mapped", table_cmd(image=image))
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
        plan.add("the partition table about to be mapped (guide 4.3: kpartx -l)", table_cmd(device=dev))
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
    plan.add("the accounts (password set or locked; never a hash)", read("chroot", mnt, "cat", "/etc/passwd"))
    plan.add("each login user's authorized keys (whose keys: their comments)",
             read("chroot", mnt, "stat", "-c", "%F|%a|%u|%g|%n", "--", "HOME/.ssh/authorized_keys"))
    plan.add(f"the last {lines} journal entries, if {JOURNAL_DIR} is kept on the disk", journal_cmd(mnt, lines))
    for path in log_files:
        plan.add(f"else the last {lines} lines of {path}, if present", tail_cmd(mnt, path, lines))
    plan.add("size and use of the filesystems", df_cmd([mnt]))
    plan.add("unmount (also /boot below it)", read("umount", "--recursive", mnt))
    plan.add("remove the mount point", read("rmdir", mnt))
    for reason, cmd in undo:
        plan.add(reason, cmd)
    plan.notes.append("every command only reads; unmount and unmap run on every way out, also after a failure")
    return plan


def render(report: DiskReport) -> str:
    """The report as text (sections with a header line each)."""
    out = [f"== disk {report.source}: root {report.root}, {report.os_name}"]
    if report.table:
        out += ["", "== partition table (as mapped)", report.table.rstrip()]
    out += ["", "== partitions"]
    out += [f"{node}  {size}  {fs}  {label}".rstrip() for node, size, fs, label in report.partitions]
    out += ["", "== /etc/os-release"] + [f"{k}={v}" for k, v in report.os_release.items()]
    out += ["", "== /etc/fstab", (report.fstab or "(no /etc/fstab)").rstrip()]
    out += ["", "== accounts (login shells)"] + [_account_line(a) for a in report.accounts]
    for what, text in report.logs:
        out += ["", f"== last lines of {what}", text.rstrip() or "(empty)"]
    out += ["", "== df", report.df.rstrip()]
    out += [f"note: {n}" for n in report.notes]
    return "\n".join(out)


def _account_line(a: AccountRow) -> str:
    keys = f"{len(a.keys)} key(s): {', '.join(a.keys)}" if a.keys else "no keys"
    return f"{a.name} (uid {a.uid}, {a.shell}): password {a.password}; {keys}; {a.keys_file}"
