"""What a changing step does to which object (pure): the safety gate's view of a plan.

Every changing step of a plan becomes one or more :class:`Effect` values: an action on an
object of a host (an LV ``VG/LV``, a guest, a bridge, a file, a held disk). A changing step
that is not known here becomes an ``unknown`` effect, which the gate refuses: nothing passes
through unjudged. Reads and waits change nothing (waits only tell the run what holds after
them: a merge that has finished).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kvmops.cmd import Cmd, Kind
from kvmops.lvm.paths import lv_path
from kvmops.plan import Call, MergeDone, Step, Transfer, Wait
from kvmops.units import parse_size

LV_CREATE, LV_GROW, LV_SHRINK = "create", "grow", "shrink"
RENAMED = "renamed from"  # an LV_CREATE's detail (RENAMED, old VG/LV): the LV an lvrename made
LV_REMOVE, LV_RENAME, LV_SNAPSHOT = "remove", "rename", "snapshot"
LV_MERGE, LV_MERGE_INTO, LV_OVERWRITE = "merge", "merge-into", "overwrite"
LV_POLL, LV_TAG, LV_ACTIVATE = "resume-merge-poll", "tag", "activate"
LV_ACTIONS = (LV_CREATE, LV_GROW, LV_SHRINK, LV_REMOVE, LV_RENAME, LV_SNAPSHOT, LV_MERGE, LV_MERGE_INTO,
              LV_OVERWRITE, LV_POLL, LV_TAG, LV_ACTIVATE)
HELD_WRITE = "write-held-disk"  # a change of a disk this run holds (mapped/mounted): partitions, fs, files
FILE_WRITE, FILE_RETIRE, FILE_REMOVE, DIR_MAKE = "write-file", "retire-file", "remove-file", "make-dir"
BRIDGE_ACTIONS = ("delete-bridge", "up", "up-port", "modify", "reapply", "add", "up-new")
GUEST_ACTIONS = ("define", "undefine", "destroy", "start", "shutdown", "autostart", "eject", "blockresize")
REPO_ADD, REPO_PRUNE = "repo-add", "repo-prune"  # a backup engine's repository: archives added, pruned
REPO_ACTIONS = (REPO_ADD, REPO_PRUNE)
MERGED = "merged"  # a wait: the merge of ``obj`` (the snapshot) has finished
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Effect:
    """``action`` on ``obj`` of host ``host``, by step ``index`` (``display``); ``target``: the
    step's confirm target; ``detail``: a size, a definition's XML, the argv, a file's text."""

    action: str
    obj: str
    host: str
    index: int
    display: str
    target: str | None = None
    detail: object = None


@dataclass(frozen=True)
class Where:
    """What the classifier needs to know of the run: the host a plan runs on, the sizes of its
    LVs (grow or shrink?), and the disks the run holds (device or mount point -> source)."""

    host: str
    vg: str
    lv_size: Callable[[str], int | None]
    held: Mapping[str, str]  # /dev/mapper/VG-LV, /dev/loop3, /run/kvmops/mnt-X, ... -> "VG/LV" or a file


def effects(steps: Sequence[Step], where: Where) -> list[Effect]:
    """Every effect of ``steps`` (numbered from 1), in order."""
    out: list[Effect] = []
    for i, step in enumerate(steps, 1):
        out.extend(step_effects(i, step, where))
    return out


def step_effects(i: int, step: Step, where: Where) -> list[Effect]:
    eff = step.effect
    if isinstance(eff, Wait):
        m = eff.until
        return [Effect(MERGED, f"{m.vg}/{m.snap}", where.host, i, eff.display, detail=f"{m.vg}/{m.origin}")] \
            if isinstance(m, MergeDone) else []
    if eff is None or step.kind is Kind.READ:
        return []
    if isinstance(eff, Call):
        return [Effect(eff.verb, eff.guest, where.host, i, eff.display, step.target, _call_detail(eff))]
    if isinstance(eff, Transfer):
        peer = Where(eff.target.host, where.vg if eff.target.host == where.host else "", where.lv_size, where.held)
        return [e for e in _cmd(i, eff.target.cmd, step.target, peer)]
    if isinstance(eff, Cmd):
        return _cmd(i, eff, step.target, where)
    return [Effect(UNKNOWN, str(eff), where.host, i, step.text(), step.target)]


def _call_detail(call: Call) -> object:
    if call.verb == "define":
        return call.xml
    if call.verb == "blockresize":
        return (call.device, call.size)
    return call.flag if call.verb == "autostart" else None


def _cmd(i: int, cmd: Cmd, target: str | None, where: Where) -> list[Effect]:
    a = cmd.argv
    one = _Maker(i, cmd, target, where)
    handler = _HANDLERS.get(a[0])
    found = handler(a, one) if handler else None
    return found if found is not None else [one(UNKNOWN, a[0])]


class _Maker:
    """Makes the effects of one command: ``one(action, obj, detail)``."""

    def __init__(self, i: int, cmd: Cmd, target: str | None, where: Where) -> None:
        self.i, self.cmd, self.target, self.where = i, cmd, target, where

    def __call__(self, action: str, obj: str, detail: object = None) -> Effect:
        return Effect(action, obj, self.where.host, self.i, self.cmd.display(), self.target, detail)

    def held(self, path: str) -> str | None:
        """The source of a held disk that ``path`` (a device, partition or a path under a
        mount point) belongs to."""
        norm = os.path.normpath(path) if path.startswith("/") else path
        for key, source in self.where.held.items():
            if norm == key or norm.startswith(key.rstrip("/") + "/") or (
                    key.startswith("/dev/") and norm.startswith(key) and norm[len(key):].lstrip("p").isdigit()):
                return source
        return None

    def on_held(self, path: str) -> list[Effect]:
        source = self.held(path)
        return [self(HELD_WRITE, source, self.cmd.argv)] if source else [self(UNKNOWN, path)]


Handler = Callable[[tuple[str, ...], _Maker], "list[Effect] | None"]


def _opt(a: tuple[str, ...], flag: str) -> str | None:
    return a[a.index(flag) + 1] if flag in a and a.index(flag) + 1 < len(a) else None


def _lvcreate(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    name, last = _opt(a, "--name"), a[-1]
    if name is None:
        return None
    if "--snapshot" in a:
        return [one(LV_SNAPSHOT, last), one(LV_CREATE, f"{last.split('/')[0]}/{name}")]
    size = _opt(a, "--size")
    return [one(LV_CREATE, f"{last}/{name}", parse_size(size, default_unit="b") if size else None)]


def _lvresize(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    size_text = _opt(a, "--size")
    if size_text is None:
        return None
    path, size = a[-1], parse_size(size_text, default_unit="b")
    have = one.where.lv_size(path)
    grow = have is not None and size > have and "--yes" not in a and one.cmd.stdin is None
    return [one(LV_GROW if grow else LV_SHRINK, path, size)]


def _lvconvert(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    snap = _opt(a, "--mergesnapshot")
    return [one(LV_MERGE, snap)] if snap else None


def _lvchange(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    if a[1:3] == ("--poll", "y") and len(a) == 4:
        return [one(LV_POLL, a[3])]
    if a[1] in ("-ay", "-an") and len(a) == 3:
        return [one(LV_ACTIVATE, a[2], a[1] == "-ay")]
    flags = a[1:-1]
    if flags and all(f in ("--addtag", "--deltag") for f in flags[::2]):
        return [one(LV_TAG, a[-1])]
    return None


def _lvremove(a: tuple[str, ...], one: _Maker) -> list[Effect]:
    objs = [x for x in a[1:] if not x.startswith("-")]
    return [one(LV_REMOVE, objs[0] if len(objs) == 1 else " ".join(objs) or "(none)", a)]


def _device_write(dev: str, one: _Maker) -> list[Effect]:
    path = lv_path(dev)
    if path is not None:
        return [one(LV_OVERWRITE, path)]
    return one.on_held(dev) if one.held(dev) else [one(FILE_WRITE, dev, None)]


def _dd(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    out = next((x[3:] for x in a if x.startswith("of=")), None)
    return _device_write(out, one) if out else None


def _qemu_img(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    return _device_write(a[-1], one) if a[1] == "convert" else None


def _install(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    """``install -D -m MODE /dev/stdin PATH`` (the text) or ``... /dev/null PATH`` (an empty file)."""
    if len(a) < 3 or a[-2] not in ("/dev/stdin", "/dev/null"):
        return None
    return [one(FILE_WRITE, a[-1], one.cmd.stdin if a[-2] == "/dev/stdin" else "")]


def _openssl(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    out = _opt(a, "-out")
    return [one(FILE_WRITE, out, one.cmd.stdin)] if a[1:3] == ("base64", "-d") and out else None


def _mv(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    paths = [x for x in a[1:] if not x.startswith("-")]
    if len(paths) != 2:
        return None
    return [one(FILE_RETIRE, paths[0]), one(FILE_WRITE, paths[1], None)]


def _rm(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    paths = [x for x in a[1:] if not x.startswith("-")]
    return [one(FILE_REMOVE, p, "-r" in a) for p in paths] or None


def _mkdir(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    paths = [x for x in a[1:] if x.startswith("/")]
    return [one(DIR_MAKE, p) for p in paths] or None


def _chroot(a: tuple[str, ...], one: _Maker) -> list[Effect]:
    return one.on_held(a[1])


def _last_on_held(a: tuple[str, ...], one: _Maker) -> list[Effect]:
    """sfdisk/kpartx -u/partx/growpart/e2fsck/resize2fs/xfs_growfs/btrfs/losetup: on a held disk."""
    devs = [x for x in a[1:] if x.startswith("/")]
    return one.on_held(devs[0]) if devs else [one(UNKNOWN, a[0])]


def _mount(a: tuple[str, ...], one: _Maker) -> list[Effect]:
    """Bind mounts into a held image's root (grub's probe), and their undoing."""
    return one.on_held(a[-1])


def _nmcli(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    verb = a[1:3]
    if verb == ("connection", "delete"):
        return [one("delete-bridge", a[-1])]
    if a[1:4] == ("connection", "up", "uuid"):
        return [one("up", a[-1])]
    if a[1:4] == ("connection", "up", "id"):
        return [one("up-new", a[-1])]
    if verb == ("connection", "modify"):
        return [one("modify", a[4] if len(a) > 4 else "?")]
    if verb == ("device", "reapply"):
        return [one("reapply", a[-1])]
    if verb == ("connection", "add"):
        return [one("add", _opt(a, "master") or _opt(a, "ifname") or "?", a)]
    return None


_BORG_GLOB = re.compile(r"(?P<guest>[A-Za-z0-9][A-Za-z0-9_.-]*)-(?:\[0-9\]){8}T(?:\[0-9\]){6}Z(?:\.verified-\*)?")


# The options of kvmops' own borg commands (True: takes a value). Any other option is unknown:
# some run commands (--content-from-command, --paths-from-command, --rsh, --remote-path).
_BORG_OPTS: dict[str, dict[str, bool]] = {
    "init": {"--encryption=repokey-blake2": False, "--make-parent-dirs": False},
    "create": {"--read-special": False, "--compression": True, "--timestamp": True, "--stdin-name": True},
    "prune": {"--list": False, "--glob-archives": True, "--keep-last": True, "--keep-daily": True,
              "--keep-weekly": True, "--keep-monthly": True},
    "compact": {},
}


def _borg_args(a: tuple[str, ...]) -> tuple[list[str], dict[str, str]] | None:
    """A borg command's positional arguments and options, or None when it is not one of
    kvmops' own shapes (an unknown verb or option, an option twice, a value missing)."""
    opts = _BORG_OPTS.get(a[1]) if len(a) > 2 else None
    if opts is None:
        return None
    pos: list[str] = []
    seen: dict[str, str] = {}
    rest = iter(a[2:])
    for x in rest:
        if not x.startswith("-") or x == "-":
            pos.append(x)
        elif x in opts and x not in seen:
            value = next(rest, None) if opts[x] else ""
            if value is None:
                return None
            seen[x] = value
        else:
            return None
    return pos, seen


def _borg(a: tuple[str, ...], one: _Maker) -> list[Effect] | None:
    """borg init/create (archives added to a repository), compact (the space of pruned ones
    freed), prune of one guest's archives (``--glob-archives GUEST-<stamp>``; its target:
    the guest), each only in the shape kvmops makes it. Anything else of borg is unknown."""
    parsed = _borg_args(a)
    if parsed is None:
        return None
    pos, opts = parsed
    verb = a[1]
    if verb in ("init", "compact") and len(pos) == 1:
        return [one(REPO_ADD, pos[0])]
    if verb == "create" and len(pos) >= 2 and "::" in pos[0] and all(p == "-" or p.startswith("/") for p in pos[1:]):
        return [one(REPO_ADD, pos[0].split("::", 1)[0])]
    m = _BORG_GLOB.fullmatch(opts.get("--glob-archives", ""))
    if verb == "prune" and m and len(pos) == 1 and any(k.startswith("--keep-") for k in opts):
        return [one(REPO_PRUNE, pos[0], m.group("guest"))]
    return None


_HANDLERS: dict[str, Handler] = {
    "lvcreate": _lvcreate, "lvresize": _lvresize, "lvconvert": _lvconvert, "lvchange": _lvchange,
    "lvremove": _lvremove, "lvrename": lambda a, one: [one(LV_RENAME, f"{a[1]}/{a[2]}"),
                                                       one(LV_CREATE, f"{a[1]}/{a[3]}", (RENAMED, f"{a[1]}/{a[2]}"))]
    if len(a) == 4 else None,
    "dd": _dd, "qemu-img": _qemu_img, "install": _install, "openssl": _openssl, "mv": _mv, "rm": _rm,
    "mkdir": _mkdir, "chroot": _chroot, "mount": _mount, "umount": _mount, "nmcli": _nmcli, "borg": _borg,
    **{tool: _last_on_held for tool in ("sfdisk", "kpartx", "partx", "growpart", "e2fsck", "resize2fs",
                                        "xfs_growfs", "btrfs", "losetup")},
}
