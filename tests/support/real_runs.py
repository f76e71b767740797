"""Runs planned by kvmops' own operations on a random world: the LVM tasks, the image copy,
the guest lifecycle (plans and the guest-lifecycle procedure), guest-create (its phases, the
offline tweaks holding the new LV), guest-remove, lv-rename, host-recovery, the LV phase of
guest-resize, and the network's bridges. Each gets arguments chosen
from the world (mostly names it has, sometimes others); a planner's refusal (a kvmops error)
is no run. Single-host operations only: the gate's view of a second host (a transfer's peer,
a backup place) is not part of these worlds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from kvmops.errors import KvmopsError
from kvmops.executor import Procedure
from kvmops.guests import lifecycle
from kvmops.guests.spec import GuestSpec
from kvmops.images.copy import copy_plan
from kvmops.lvm import ops
from kvmops.net.ops import ensure_network, remove_bridge
from kvmops.plan import Plan
from kvmops.procedures import guest_create as gc
from kvmops.procedures import guest_lifecycle, guest_remove, guest_resize, host_recovery, lv_rename
from tests.support.gate_vs_oracle import Run
from tests.support.random_facts import GUESTS, IMAGE, NEW_GUESTS, SITE, SITE_BRIDGES, Dice, World
from tests.support.random_plans import guest, lv

GiB = 1 << 30
WHEN = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"
VLANS = tuple(n.vlan for n in SITE.networks)


def _plan(p: Plan) -> Run:
    return Run((p,))


def _proc(p: Procedure) -> Run:
    holds = tuple((ph.hold.source, ph.hold.write) if ph.hold is not None else None for ph in p.phases)
    return Run(tuple(p.preview), holds)


def _size(world: World, name: str, d: Dice) -> int:
    have = world.facts.lvm.get(name)
    return (have.size if have else 10 * GiB) + d.pick((1, 5, -5)) * GiB


def _lvm(world: World, d: Dice) -> Run:
    f, name = world.facts, lv(world, d)
    snaps = [x.name for x in f.lvm.lvs if x.is_snapshot] or [name]
    op = d.pick(("create", "rename", "resize", "resize", "snapshot", "merge", "remove", "extend"))
    return _plan({
        "create": lambda: ops.create(f, d.pick(("vmnew1", "vmweb9", name)), d.pick((GiB, 20 * GiB))),
        "rename": lambda: ops.rename(f, name, d.pick(("vmnew1", "vmweb9", name))),
        "resize": lambda: ops.resize(f, name, max(_size(world, name, d), GiB)),
        "snapshot": lambda: ops.snapshot(f, name, None, WHEN),
        "merge": lambda: ops.merge(f, d.pick(snaps)),
        "remove": lambda: ops.remove(f, d.pick((name, d.pick(snaps)))),
        "extend": lambda: ops.extend_full_snapshots(f, d.pick((50.0, 80.0)), GiB),
    }[op]())


def _copy(world: World, d: Dice) -> Run:
    f = world.facts
    return _plan(copy_plan(f, lv(world, d), replace(f.image(IMAGE), format="raw"), method=d.pick(("qemu-img", "dd"))))


def _define(world: World, d: Dice) -> Run:
    name = guest(world, d)
    data = (d.pick((f"vm{name}-data", lv(world, d))),) if d.maybe(1, 3) else ()
    spec = GuestSpec(name, 1048576, 1, (d.pick(SITE_BRIDGES),), data_lvs=data)
    return _plan(lifecycle.define(world.facts, spec))


def _lifecycle(world: World, d: Dice) -> Run:
    f, name = world.facts, guest(world, d)
    action = d.pick(("start", "start", "shutdown", "destroy", "undefine", "autostart", "noautostart"))
    if action == "undefine":
        return _plan(lifecycle.undefine(f, name))
    if d.maybe(1, 2):
        return _proc(guest_lifecycle.procedure(f, name, action))
    return _plan(guest_lifecycle.plan(f, name, action))


def _remove(world: World, d: Dice) -> Run:
    return _proc(guest_remove.procedure(world.facts, guest(world, d), d.maybe(2, 3)))


def _rename(world: World, d: Dice) -> Run:
    named = sorted({n for lvs in world.disks_of.values() for n in lvs if world.facts.lvm.get(n)})
    old = d.pick(named) if named and d.maybe(2, 3) else lv(world, d)
    return _proc(lv_rename.procedure(world.facts, old, d.pick(("vmnew1", "vmweb9"))))


def _recovery(world: World, d: Dice) -> Run:
    return _proc(host_recovery.procedure(world.facts, [g for g in GUESTS if d.maybe(1, 4)], 60.0))


def _create(world: World, d: Dice) -> Run:
    name = d.pick(NEW_GUESTS) if d.maybe(1, 2) else guest(world, d)
    setup = d.pick(gc.SETUPS)
    req = gc.request(SITE, name, vlans=str(d.pick(VLANS)), memory="1g", vcpus=1, size=d.pick(("20g", "1g")),
                     image=IMAGE, setup=setup, keys="" if setup == "none" else KEY)
    return _proc(gc.procedure(world.facts, req))


def _resize(world: World, d: Dice) -> Run:
    name = guest(world, d)
    have = world.facts.lvm.get(f"{SITE.lv_prefix}{name}")
    return _proc(guest_resize.lv_phase(world.facts, name, (have.size if have else 10 * GiB) + GiB))


def _network(world: World, d: Dice) -> Run:
    if d.maybe(1, 2):
        return _plan(remove_bridge(world.facts, d.pick((*SITE_BRIDGES, "virbr1.99", "br0"))))
    return _plan(ensure_network(world.facts, d.pick(VLANS), d.pick((None, True, False))))


OPERATIONS: dict[str, Callable[[World, Dice], Run]] = {
    "lvm": _lvm, "copy": _copy, "define": _define, "lifecycle": _lifecycle, "guest-remove": _remove,
    "lv-rename": _rename, "host-recovery": _recovery, "guest-create": _create, "guest-resize": _resize,
    "network": _network,
}
NAMES = tuple(OPERATIONS)


def run(world: World, d: Dice, tries: int = 10) -> tuple[str, Run | None]:
    """An operation's run on ``world``: the first of up to ``tries`` operations (with their
    arguments) that the planner does not refuse (None: each was refused)."""
    op = ""
    for _ in range(tries):
        op = d.pick(NAMES)
        try:
            return op, replace(OPERATIONS[op](world, d), label=op)
        except KvmopsError:
            continue
    return op, None
