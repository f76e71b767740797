"""What plans do to LVs, bridges and guests, read from their steps, and the safety rules every
plan must keep, judged against a random world's oracle (:mod:`tests.support.random_facts`).

:func:`effects` turns each changing step (a command, a libvirt call) into an
:class:`Effect`: an action on an object (``VG/LV``, a bridge, a guest, a file) with the
step's confirm target. A changing step it does not know is an error, so a new kind of effect
cannot slip past the rules unnoticed. :func:`assert_safe` walks the plans of one run in order
(a procedure's phases: what an earlier phase made, undefined or removed counts for the later
ones) and checks every rule:

- no LV effect on a host LV, nor on another VG than the site's;
- no removal, rename, shrink, snapshot, merge or overwrite of an LV that is in use (a running
  or paused guest's disk, LVM's open flag) or of which LVM cannot tell whether it is open;
  growing is allowed on an LV in use (guide 4.2.4: safe while in use);
- no removal of an LV a defined guest names, or that has snapshots, no merge of an invalid or
  already merging snapshot; ``lvchange --poll y`` only on an origin whose merge is under way;
- no deletion of a bridge in use (a defined guest names it, or a port that is no VLAN port),
  nor of a host bridge; no re-activation (``connection up``) of a bridge in use;
- no undefine or redefinition of a running guest, no start of a running one, no definition
  that shares a disk LV with another guest or names a host LV;
- every destructive step carries its exact target: the ``VG/LV`` it removes, shrinks, merges
  or overwrites (an LV made by the same run excepted), the bridge it deletes, the guest it
  destroys, undefines or redefines, or whose differing kept XML it replaces.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kvmops import guards
from kvmops.cmd import Cmd, Kind
from kvmops.guests import hostfile
from kvmops.guests.xml import read_domain
from kvmops.lvm.paths import lv_path
from kvmops.plan import Call, Plan, Step, Wait
from kvmops.units import parse_size
from tests.support.random_facts import HOST_BRIDGES, OTHER_VG, SITE, VG_NAME, World

LV_CHANGES = ("remove", "rename", "shrink", "snapshot", "merge", "merge-into", "overwrite")
"""LV effects refused on an LV in use (growing and creating are not among them)."""


@dataclass(frozen=True)
class Effect:
    action: str
    obj: str
    target: str | None
    detail: Any = None


def effects(plan: Plan, world: World) -> list[Effect]:
    """Every changing step of ``plan`` as effects (reads and waits are none)."""
    out: list[Effect] = []
    for step in plan.steps:
        out.extend(_step_effects(step, world))
    return out


def _step_effects(step: Step, world: World) -> list[Effect]:
    eff = step.effect
    if eff is None or isinstance(eff, Wait) or step.kind is not Kind.CHANGE:
        return []
    if isinstance(eff, Cmd):
        return _cmd_effects(eff, step.target, world)
    if isinstance(eff, Call):
        return _call_effects(eff, step.target)
    raise AssertionError(f"unknown effect {eff!r}")


def _lvm_size(text: str) -> int:
    return parse_size(text, default_unit="b")


def _cmd_effects(cmd: Cmd, target: str | None, world: World) -> list[Effect]:
    a = cmd.argv
    e = lambda action, obj, detail=None: Effect(action, obj, target, detail)  # noqa: E731
    if a[0] == "lvcreate":
        name = a[a.index("--name") + 1]
        if "--snapshot" in a:
            return [e("snapshot", a[-1]), e("create", f"{a[-1].split('/')[0]}/{name}")]
        return [e("create", f"{a[-1]}/{name}", _lvm_size(a[a.index('--size') + 1]))]
    if a[0] == "lvrename":
        return [e("rename", f"{a[1]}/{a[2]}"), e("create", f"{a[1]}/{a[3]}")]
    if a[0] == "lvresize":
        path, size = a[-1], _lvm_size(a[a.index("--size") + 1])
        have = world.facts.lvm.get(path.split("/", 1)[1]) if path.startswith(f"{VG_NAME}/") else None
        grow = have is not None and size > have.size and cmd.stdin is None
        return [e("grow" if grow else "shrink", path, size)]
    if a[0] == "lvconvert" and "--mergesnapshot" in a:
        snap = a[a.index("--mergesnapshot") + 1]
        lv = world.facts.lvm.get(snap.split("/", 1)[1])
        origin = f"{VG_NAME}/{lv.origin}" if lv is not None else "?"
        return [e("merge", snap), e("merge-into", origin)]
    if a[:3] == ("lvchange", "--poll", "y"):
        return [e("resume-merge-poll", a[3])]
    if a[0] == "lvremove":
        return [e("remove", next(x for x in a[1:] if not x.startswith("-")), tuple(a))]
    if a[:2] == ("qemu-img", "convert"):
        return [e("overwrite", _dev_lv(a[-1]))]
    if a[0] == "dd":
        return [e("overwrite", _dev_lv(next(x[3:] for x in a if x.startswith("of="))))]
    if a[0] == "nmcli":
        return [_nmcli(a, target, world)]
    if a[0] == "install" and a[-1] != "/dev/null":
        return [e("write-file", a[-1], cmd.stdin)]
    if a[0] == "install":
        return [e("write-file", a[-1], "")]
    if a[:4] == ("openssl", "base64", "-d", "-A"):
        return [e("write-file", a[a.index("-out") + 1], cmd.stdin)]
    if a[0] == "mv":
        return [e("retire-file", a[-2])]
    if a[0] == "rm":
        return [e("remove-file", a[-1])]
    raise AssertionError(f"a changing command the safety rules do not know: {cmd.display()}")


def _dev_lv(dev: str) -> str:
    return lv_path(dev) or f"?{dev}"


def _nmcli(a: tuple[str, ...], target: str | None, world: World) -> Effect:
    net = world.facts.net
    if a[1:3] == ("connection", "delete"):
        return Effect("delete-bridge", _bridge_of_profile(a[-1], world), target)
    if a[1:4] == ("connection", "up", "uuid"):
        port = any(p.uuid == a[-1] and p.type == "vlan" for p in net.profiles)
        return Effect("up-port" if port else "up", _bridge_of_profile(a[-1], world), target)
    if a[1:4] == ("connection", "up", "id"):
        return Effect("up-new", a[-1], target)
    if a[1:3] == ("connection", "modify"):
        return Effect("modify", _bridge_of_profile(a[4], world), target)
    if a[1:3] == ("device", "reapply"):
        return Effect("reapply", a[-1], target)
    if a[1:3] == ("connection", "add"):
        master = a[a.index("master") + 1] if "master" in a else a[a.index("ifname") + 1]
        assert net.link(master) is None or a[a.index("ifname") + 1] != master or not net.bridge_profiles(master)
        return Effect("add", master, target)
    raise AssertionError(f"an nmcli command the safety rules do not know: {a}")


def _bridge_of_profile(uuid: str, world: World) -> str:
    net = world.facts.net
    prof = next((p for p in net.profiles if p.uuid == uuid), None)
    assert prof is not None, f"nmcli acts on the profile {uuid}, which the facts do not have"
    if prof.type == "bridge":
        return prof.interface_name
    owner = next((p for p in net.profiles if p.type == "bridge" and prof.master in (p.id, p.uuid,
                                                                                     p.interface_name)), None)
    return owner.interface_name if owner else prof.master or prof.interface_name


def _call_effects(call: Call, target: str | None) -> list[Effect]:
    words = call.display.split()
    assert words[0] == "virsh", call.display
    if call.verb == "define":
        return [Effect("define", call.guest, target, call.xml)]
    if call.verb in ("undefine", "destroy", "start", "shutdown", "autostart", "eject", "blockresize"):
        return [Effect(call.verb, call.guest, target)]
    raise AssertionError(f"a libvirt call the safety rules do not know: {call.display}")


# -- the rules -------------------------------------------------------------------------------


@dataclass
class _Run:
    """What the earlier steps of one run did (later phases are planned as if they had)."""

    created: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    undefined: set[str] = field(default_factory=set)
    defined: set[str] = field(default_factory=set)


def assert_safe(world: World, plans: Iterable[Plan]) -> list[Effect]:
    """Every rule of the module docstring, for the plans of one run in order; returns the effects."""
    run = _Run()
    seen: list[Effect] = []
    for plan in plans:
        for eff in effects(plan, world):
            _check(world, run, eff)
            seen.append(eff)
    return seen


def _check(world: World, run: _Run, eff: Effect) -> None:
    if eff.action in ("create", "grow", *LV_CHANGES):
        _check_lv(world, run, eff)
    elif eff.action in ("delete-bridge", "up", "up-port", "modify", "reapply", "add", "up-new"):
        _check_bridge(world, eff)
    elif eff.action in ("define", "undefine", "destroy", "start", "shutdown", "autostart", "eject"):
        _check_guest(world, run, eff)
    elif eff.action in ("write-file", "retire-file", "remove-file"):
        _check_file(world, eff)
    elif eff.action == "resume-merge-poll":
        _check_merge_poll(world, eff)
    else:
        raise AssertionError(f"unknown effect {eff}")


def _check_merge_poll(world: World, eff: Effect) -> None:
    """Resuming the polling of a merge is safe only on an origin whose merge is under way."""
    vg, _, name = eff.obj.partition("/")
    lvm = world.facts.lvm
    origin = lvm.get(name)
    merging = origin is not None and (origin.merging or any(s.merging for s in lvm.snapshots_of(name)))
    assert vg == VG_NAME and merging, f"lvchange --poll y on {eff.obj}, where no merge is under way"


def _check_lv(world: World, run: _Run, eff: Effect) -> None:
    vg, _, name = eff.obj.partition("/")
    assert vg == VG_NAME and vg != OTHER_VG, f"{eff.action} of {eff.obj}: not the site's VG"
    assert world.guest_lv(name), f"{eff.action} of the host LV {eff.obj}"
    lvm = world.facts.lvm
    have = None if name in run.created or name in run.removed else lvm.get(name)
    if eff.action == "create":
        assert have is None or name in run.removed, f"creating {eff.obj}, which exists"
        run.created.add(name)
        run.removed.discard(name)
        return
    if name in run.created:  # made by this run: nothing to lose, nobody uses it
        if eff.action == "remove":
            assert eff.target == eff.obj
        return
    assert have is not None, f"{eff.action} of {eff.obj}, which does not exist"
    if eff.action in LV_CHANGES:
        assert world.lv_free(name), (f"{eff.action} of {eff.obj}, which is in use or may be (open flag "
                                     f"{world.open_flag.get(name)!r}, running disks {sorted(world.running_disks)})")
    if eff.action in ("remove", "shrink", "merge", "overwrite"):
        assert eff.target == eff.obj, f"{eff.action} of {eff.obj} with target {eff.target!r}"
    if eff.action == "remove":
        guards.lvremove_argv(eff.detail)  # one exact VG/LV, never -y/-f (guide 4.2.3)
        users = {g for g, lvs in world.disks_of.items() if name in lvs and g not in run.undefined}
        assert not users, f"removing {eff.obj}, a disk of the defined guest(s) {sorted(users)}"
        left = [s.name for s in lvm.snapshots_of(name) if s.vg == VG_NAME and s.name not in run.removed]
        assert not left, f"removing {eff.obj} would take its snapshots {left}"
        run.removed.add(name)
    if eff.action == "rename":
        run.removed.add(name)
    if eff.action == "merge":
        assert have.is_snapshot and not have.invalid and not have.merging, f"merging {have}"
    if eff.action == "snapshot":
        assert not have.is_snapshot, f"a snapshot of the snapshot {eff.obj}"
    if eff.action == "grow":
        assert eff.detail > have.size


def _check_bridge(world: World, eff: Effect) -> None:
    bridge = eff.obj
    used = bridge in world.bridges_used
    if eff.action == "delete-bridge":
        assert not used, f"deleting the bridge {bridge}, which guests use"
        assert bridge not in HOST_BRIDGES, f"deleting the host bridge {bridge}"
        assert eff.target == bridge, f"deleting {bridge} with target {eff.target!r}"
    if eff.action == "up":
        assert bridge not in world.bridges_plugged, f"re-activating the bridge {bridge}, which has guest " \
                                                    "ports (activation detaches them)"


def _check_guest(world: World, run: _Run, eff: Effect) -> None:
    name = eff.obj
    known = name in world.domains and name not in run.undefined
    active = known and world.domains[name]
    if eff.action == "undefine":
        assert known and not active, f"undefine of {name} (defined: {known}, active: {active})"
        assert eff.target == name
        run.undefined.add(name)
    elif eff.action == "destroy":
        assert active and eff.target == name, f"destroy of {name} (active: {active}, target {eff.target!r})"
    elif eff.action == "start":
        assert (known and not active) or name in run.defined, f"start of {name} (active: {active})"
    elif eff.action == "define":
        _check_define(world, run, eff, known, active)


def _check_define(world: World, run: _Run, eff: Effect, known: bool, active: bool) -> None:
    """No running guest redefined, a changed definition confirmed; a disk the definition adds
    is no host LV and no other guest's disk (what a guest had before is not kvmops' doing)."""
    name, xml = eff.obj, eff.detail
    assert not active, f"redefining the running guest {name}"
    new = read_domain(xml)
    had: set[str] = set()
    if known:
        old = read_domain(next(d for d in world.facts.domains if d.name == name).inactive_xml)
        if old.lines() != new.lines():
            assert eff.target == name, f"replacing the definition of {name} without target"
        had = {p for p in map(lv_path, old.disk_sources) if p}
    for source in new.disk_sources:
        path = lv_path(source)
        if path is None or path in had:
            continue
        vg, _, lv = path.partition("/")
        assert vg != VG_NAME or world.guest_lv(lv), f"guest {name} defined with the host LV {path}"
        others = {g for g, lvs in world.disks_of.items() if g != name and lv in lvs and g not in run.undefined}
        assert vg != VG_NAME or not others, f"guest {name} defined with {path}, a disk of {sorted(others)}"
    run.defined.add(name)


def _check_file(world: World, eff: Effect) -> None:
    path = eff.obj
    if eff.action != "write-file" or os.path.dirname(path) != SITE.xml_dir or not path.endswith(".xml"):
        return
    kept = world.facts.files.get(path)
    guest = os.path.basename(path)[: -len(".xml")]
    if kept is not None and kept != eff.detail:
        assert eff.target == guest, f"replacing the differing kept XML {path} without target {guest!r}"


def xml_path(guest: str) -> str:
    return hostfile.xml_path(SITE, guest)
