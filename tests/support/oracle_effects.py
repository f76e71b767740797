"""How the tests' oracle reads plans: every changing step as effects on objects (pure).

:func:`effects` turns each changing step (a command, a libvirt call, a transfer's target, a
wait for a merge) into :class:`Effect` values: an action on an object (``VG/LV``, a bridge, a
guest, a file, a held disk) with the step's confirm target. A changing step it does not know
becomes an ``unknown`` effect. Written for the tests, independent of :mod:`kvmops.safety`
(the oracle's rules: :mod:`tests.support.plan_safety`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kvmops.cmd import Cmd, Kind
from kvmops.plan import Call, MergeDone, Plan, Step, Transfer, Wait
from kvmops.units import parse_size
from tests.support.random_facts import VG_NAME, World

DISK_TOOLS = ("sfdisk", "kpartx", "partx", "growpart", "e2fsck", "resize2fs", "xfs_growfs", "btrfs", "losetup",
              "chroot", "mount", "umount")
"""Tools that change what is inside a disk (or mount it): only on a disk the run holds."""


@dataclass(frozen=True)
class Effect:
    """``action`` on ``obj`` by step ``step`` of plan ``plan`` (numbered from 1 and 0)."""

    action: str
    obj: str
    target: str | None
    detail: Any = None
    plan: int = 0
    step: int = 0


@dataclass(frozen=True)
class Hold:
    """A disk a phase holds: ``source`` (``VG/LV``) mapped, read-write when ``write``; ``at``:
    the device and mount paths where the plan's steps name it."""

    source: str
    write: bool
    at: tuple[str, ...]


def effects(plan: Plan, world: World, index: int = 0, hold: Hold | None = None) -> list[Effect]:
    """Every changing step of ``plan`` as effects (reads are none)."""
    out: list[Effect] = []
    for i, step in enumerate(plan.steps, 1):
        out.extend(Effect(a, o, step.target, d, index, i) for a, o, d in _step_effects(step, world, hold))
    return out


Raw = tuple[str, str, Any]


def _step_effects(step: Step, world: World, hold: Hold | None) -> list[Raw]:
    eff = step.effect
    if isinstance(eff, Wait):
        m = eff.until
        return [("merged", f"{m.vg}/{m.snap}", f"{m.vg}/{m.origin}")] if isinstance(m, MergeDone) else []
    if eff is None or step.kind is not Kind.CHANGE:
        return []
    if isinstance(eff, Call):
        return [(eff.verb, eff.guest, eff.xml if eff.verb == "define" else None)]
    if isinstance(eff, Transfer):
        return _cmd_effects(eff.target.cmd, world, hold)
    if isinstance(eff, Cmd):
        return _cmd_effects(eff, world, hold)
    return [("unknown", repr(eff), None)]


def _opt(a: tuple[str, ...], flag: str) -> str | None:
    return a[a.index(flag) + 1] if flag in a[:-1] else None


def _cmd_effects(cmd: Cmd, world: World, hold: Hold | None) -> list[Raw]:
    a = cmd.argv
    tool = a[0]
    if tool in LVM_TOOLS:
        found = LVM_TOOLS[tool](cmd, world)
    elif tool in ("dd", "qemu-img"):
        found = _write_device(cmd, hold)
    elif tool in DISK_TOOLS:
        found = _disk_tool(a, hold)
    elif tool == "nmcli":
        found = _nmcli(a, world)
    elif tool == "borg":
        found = _borg(a)
    else:
        found = _file_cmd(cmd)
    return found if found is not None else [("unknown", cmd.display(), None)]


def _size(text: str | None) -> int | None:
    return parse_size(text, default_unit="b") if text else None


def _lvcreate(cmd: Cmd, world: World) -> list[Raw] | None:
    a = cmd.argv
    name = _opt(a, "--name")
    if name is None:
        return None
    if "--snapshot" in a:
        return [("snapshot", a[-1], None), ("create", f"{a[-1].split('/')[0]}/{name}", "snapshot")]
    return [("create", f"{a[-1]}/{name}", _size(_opt(a, "--size")))]


def _lvresize(cmd: Cmd, world: World) -> list[Raw] | None:
    size = _size(_opt(cmd.argv, "--size"))
    if size is None:
        return None
    path = cmd.argv[-1]
    have = world.facts.lvm.get(path.split("/", 1)[1]) if path.startswith(f"{VG_NAME}/") else None
    grow = have is not None and size > have.size and cmd.stdin is None
    return [("grow" if grow else "shrink", path, size)]


def _lvconvert(cmd: Cmd, world: World) -> list[Raw] | None:
    snap = _opt(cmd.argv, "--mergesnapshot")
    if snap is None:
        return None
    vg, _, name = snap.partition("/")
    lv = world.facts.lvm.get(name) if vg == VG_NAME else None
    origin = f"{VG_NAME}/{lv.origin}" if lv is not None and lv.origin else ""
    return [("merge", snap, None), *([("merge-into", origin, None)] if origin else [])]


def _lvchange(cmd: Cmd, world: World) -> list[Raw] | None:
    a = cmd.argv
    if a[1:3] == ("--poll", "y") and len(a) == 4:
        return [("resume-merge-poll", a[3], None)]
    if len(a) == 3 and a[1] in ("-ay", "-an"):
        return [("activate", a[2], a[1] == "-ay")]
    if len(a) >= 4 and all(f in ("--addtag", "--deltag") for f in a[1:-1:2]):
        return [("tag", a[-1], None)]
    return None


def _lvremove(cmd: Cmd, world: World) -> list[Raw]:
    names = [x for x in cmd.argv[1:] if not x.startswith("-")]
    return [("remove", names[0] if names else "", cmd.argv)]


def _lvrename(cmd: Cmd, world: World) -> list[Raw] | None:
    a = cmd.argv
    return [("rename", f"{a[1]}/{a[2]}", None), ("create", f"{a[1]}/{a[3]}", None)] if len(a) == 4 else None


LVM_TOOLS = {"lvcreate": _lvcreate, "lvresize": _lvresize, "lvconvert": _lvconvert, "lvchange": _lvchange,
             "lvremove": _lvremove, "lvrename": _lvrename}


def lv_of(source: str) -> tuple[str, str] | None:
    """(VG, LV) of a device path: ``/dev/VG/LV`` or ``/dev/mapper/VG-LV`` (dashes doubled)."""
    if not source.startswith("/dev/"):
        return None
    parts = source[5:].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    if parts[0] != "mapper":
        return (parts[0], parts[1]) if parts[0] not in ("disk", "pts", "input", "block") else None
    name = parts[1]
    for i, c in enumerate(name):
        if c == "-" and name[i - 1:i] != "-" and name[i + 1:i + 2] != "-":
            vg, lv = name[:i].replace("--", "-"), name[i + 1:].replace("--", "-")
            return (vg, lv) if vg and lv else None
    return None


def _held_source(path: str, hold: Hold | None) -> str | None:
    """The held disk ``path`` lies on: its device, a partition of it, or under its mount."""
    if hold is None:
        return None
    norm = os.path.normpath(path) if path.startswith("/") else path
    for at in hold.at:
        rest = norm[len(at):] if norm.startswith(at) else None
        if rest is not None and (rest == "" or rest.startswith("/") or rest.lstrip("p").isdigit()):
            return hold.source
    return None


def _write_device(cmd: Cmd, hold: Hold | None) -> list[Raw] | None:
    a = cmd.argv
    if a[0] == "dd":
        out = next((x[3:] for x in a if x.startswith("of=")), None)
    else:
        out = a[-1] if a[1:2] == ("convert",) else None
    if out is None:
        return None
    lv = lv_of(out)
    if lv:  # a whole LV, also the one the run holds: no change inside a disk
        return [("overwrite", f"{lv[0]}/{lv[1]}", None)]
    held = _held_source(out, hold)
    return [("held-write", held, a)] if held else [("write-file", out, None)]


def _disk_tool(a: tuple[str, ...], hold: Hold | None) -> list[Raw]:
    paths = [x for x in a[1:] if x.startswith("/")]
    held = next((s for s in (_held_source(p, hold) for p in paths) if s), None)
    return [("held-write", held or "", a)]


def _file_cmd(cmd: Cmd) -> list[Raw] | None:
    a = cmd.argv
    paths = [x for x in a[1:] if x.startswith("/")]
    if a[0] == "install" and len(paths) == 2 and paths[0] in ("/dev/stdin", "/dev/null"):
        return [("write-file", paths[1], cmd.stdin if paths[0] == "/dev/stdin" else "")]
    if a[:3] == ("openssl", "base64", "-d") and _opt(a, "-out"):
        return [("write-file", _opt(a, "-out"), cmd.stdin)]
    if a[0] == "mv" and len(paths) == 2:
        return [("retire-file", paths[0], None), ("write-file", paths[1], None)]
    if a[0] == "rm" and paths:
        return [("remove-file", p, None) for p in paths]
    if a[0] == "mkdir" and paths:
        return [("make-dir", p, None) for p in paths]
    return None


BORG_FLAGS = {"--read-special", "--make-parent-dirs", "--encryption=repokey-blake2", "--list"}
BORG_VALUED = {"--compression", "--timestamp", "--stdin-name", "--glob-archives", "--keep-last", "--keep-daily",
               "--keep-weekly", "--keep-monthly"}


def _borg(a: tuple[str, ...]) -> list[Raw] | None:
    """borg: archives added (init, create, compact) or one guest's pruned (``prune`` with one
    ``--glob-archives GUEST-[0-9]...``), in the repository named last (create: before ``::``).
    Only the flags kvmops gives: any other (some run commands) makes the step unknown."""
    words, values, i = [], {}, 2
    while i < len(a):
        if a[i] in BORG_VALUED and i + 1 < len(a) and a[i] not in values:
            values[a[i]] = a[i + 1]
            i += 2
            continue
        if a[i].startswith("-") and a[i] != "-" and a[i] not in BORG_FLAGS:
            return None
        words += [] if a[i] in BORG_FLAGS else [a[i]]
        i += 1
    verb = a[1] if len(a) > 2 else ""
    if verb in ("init", "compact") and len(words) == 1 and not values:
        return [("repo-add", words[0], None)]
    if verb == "create" and words and words[0].count("::") == 1 and all(w == "-" or os.path.isabs(w)
                                                                         for w in words[1:]) and not set(values) - {
            "--compression", "--timestamp", "--stdin-name"}:
        return [("repo-add", words[0].split("::")[0], None)]
    glob = values.get("--glob-archives", "")
    if verb != "prune" or len(words) != 1 or "-[0-9][0-9]" not in glob or not any("keep" in k for k in values):
        return None
    return [("repo-prune", words[0], glob.split("-[0-9][0-9]")[0])]


def _nmcli(a: tuple[str, ...], world: World) -> list[Raw] | None:
    net = world.facts.net
    if a[1:3] == ("connection", "delete"):
        return [("delete-bridge", _bridge_of_profile(a[-1], world), None)]
    if a[1:4] == ("connection", "up", "uuid"):
        port = any(p.uuid == a[-1] and p.type == "vlan" for p in net.profiles)
        return [("up-port" if port else "up", _bridge_of_profile(a[-1], world), None)]
    if a[1:4] == ("connection", "up", "id"):
        return [("up-new", a[-1], None)]
    if a[1:3] == ("connection", "modify") and len(a) > 4:
        return [("modify", _bridge_of_profile(a[4], world), None)]
    if a[1:3] == ("device", "reapply"):
        return [("reapply", a[-1], None)]
    if a[1:3] == ("connection", "add"):
        return [("add", _opt(a, "master") or _opt(a, "ifname") or "", None)]
    return None


def _bridge_of_profile(uuid: str, world: World) -> str:
    net = world.facts.net
    prof = next((p for p in net.profiles if p.uuid == uuid), None)
    if prof is None:
        return uuid
    if prof.type == "bridge":
        return prof.interface_name
    owner = next((p for p in net.profiles if p.type == "bridge" and prof.master in (p.id, p.uuid,
                                                                                     p.interface_name)), None)
    return owner.interface_name if owner else prof.master or prof.interface_name
