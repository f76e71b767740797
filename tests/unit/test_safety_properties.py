"""Safety over random hosts: for random facts (running, paused and shut-off guests with random
disks and bridges, open and unknown LVs, valid, invalid and merging snapshots, bridges with
guest ports; tests/support/random_facts.py), no operation, CLI command or procedure ever gets
a change past the safety gate that breaks a rule: a change to an LV in use, a host LV or a
bridge in use, a guest started on a disk that is not free, a definition the XML policy
refuses, a destructive step without its exact target (the rules: tests/support/plan_safety.py;
what it plans is judged by the gate first, as the executor does: tests/support/gate_vs_oracle.py).
Invalid input is a kvmops error and no plan; never another exception.

Each property counts, within its own test, how often each operation reached its accepted path
(it planned a change) and asserts a minimum share of the cases, so it cannot pass on refusals
alone and passes alone and in any order. ``KVMOPS_PROPERTY_PROFILE=ci`` runs 10,000 cases each
(tests/support/properties.py). A case is one world, built from one draw (its dice); the
operations' arguments come from the same dice, mostly names the world has.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings

import kvmops.site
from kvmops import executor
from kvmops.cli import common as cli_common
from kvmops.cli.main import parser as cli_parser
from kvmops.errors import KvmopsError
from kvmops.facts.disk import open_disk
from kvmops.guests import lifecycle
from kvmops.guests.spec import GuestSpec
from kvmops.hostfacts import HostFacts
from kvmops.images.copy import copy_plan
from kvmops.lvm import ops
from kvmops.net.ops import ensure_network, remove_bridge
from kvmops.plan import Plan
from kvmops.procedures import guest_create as gc
from kvmops.procedures import guest_remove, host_recovery, lv_rename
from kvmops.runners import PlanRunner
from tests.support.gate_vs_oracle import checked
from tests.support.plan_safety import Effect
from tests.support.properties import cases, least
from tests.support.random_facts import (
    GUEST_LVS,
    GUESTS,
    HOST_LVS,
    IMAGE,
    NEW_GUESTS,
    SITE,
    SITE_BRIDGES,
    VG_NAME,
    World,
    worlds,
)

GiB = 1 << 30
WHEN = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
BAD_NAMES = ("", "vm", "-y", "--force", "vm/..", "vm x", "vm;rm", VG_NAME, "vm\n", "vm" + "x" * 200, "VMweb1")
GUEST_NAMES = (*GUESTS, *NEW_GUESTS, "-x", "a/b", "", "web1\n")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"


def run(n: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(max_examples=n, deadline=None)


# -- choices from the world ------------------------------------------------------------------


def lv_name(world: World, *, snapshots: bool = False) -> str:
    """Mostly an LV of the world (a guest LV, or a snapshot), sometimes a host LV or a bad name."""
    lvs = [lv.name for lv in world.facts.lvm.lvs if lv.vg == VG_NAME and world.guest_lv(lv.name)
           and lv.is_snapshot == snapshots]
    kind = world.pick(("world", "world", "world", "world", "pool", "bad"))
    if kind == "world" and lvs:
        return world.pick(lvs)
    return world.pick(GUEST_LVS if kind != "bad" else HOST_LVS + BAD_NAMES)


def named_lv(world: World) -> str:
    """Mostly an LV that a defined guest names as a disk."""
    named = sorted({lv for lvs in world.disks_of.values() for lv in lvs if world.facts.lvm.get(lv)})
    return world.pick(named) if named and world.maybe(2, 3) else lv_name(world)


def new_lv(world: World) -> str:
    """Mostly a name no LV has yet, else any name."""
    return world.pick(("vmnew", "vmweb9")) if world.maybe(2, 3) else world.pick((*GUEST_LVS, *HOST_LVS, *BAD_NAMES))


def guest_name(world: World) -> str:
    return world.pick(GUESTS) if world.maybe(2, 3) else world.pick(GUEST_NAMES)


def defined_guest(world: World) -> str:
    """Mostly a guest the world defines, a shut-off one more often."""
    off = sorted(g for g, active in world.domains.items() if not active)
    on = sorted(g for g, active in world.domains.items() if active)
    which = world.pick(("off", "off", "off", "on", "any"))
    return world.pick(off if which == "off" and off else on if which == "on" and on else GUEST_NAMES)


# -- checking --------------------------------------------------------------------------------


def attempt(fn: Callable[[], Plan]) -> Plan | None:
    """The plan, or None when refused with a kvmops error (anything else fails the test)."""
    try:
        return fn()
    except KvmopsError:
        return None


def changes(effects: list[Effect] | None) -> bool:
    """The run passed the gate and changes something."""
    return bool(effects)


def refused_when_bad(name: str, plan: Plan | None) -> None:
    """Invalid input (a host LV, a name no guest LV can have) is refused: no plan at all."""
    if name in HOST_LVS or name in BAD_NAMES:
        assert plan is None, f"{name!r} was accepted: {plan}"


def assert_minimums(seen: Counter[str], tried: int | Counter[str], share: float, ops_: tuple[str, ...]) -> None:
    """Each operation reached its accepted path in at least ``share`` of the cases it was tried."""
    times = tried if isinstance(tried, Counter) else Counter({op: tried for op in ops_})
    print("accepted:", ", ".join(f"{op} {seen[op] / max(times[op], 1):.0%}" for op in ops_))  # shown with -s
    low = {op: f"{seen[op]} of {times[op]}" for op in ops_ if seen[op] < least(share, times[op])}
    assert not low, f"accepted path reached in less than {share:.0%} of the cases: {low}; all: {seen}"


# -- LVM operations --------------------------------------------------------------------------

LVM_OPS = ("create", "rename", "grow", "shrink", "snapshot", "merge", "remove", "extend")


def test_lvm_operations_never_touch_an_lv_in_use_or_a_host_lv() -> None:
    n = cases(300)
    seen: Counter[str] = Counter()

    @run(n)
    @given(world=worlds())
    def prop(world: World) -> None:
        f = world.facts
        name, snap = lv_name(world), lv_name(world, snapshots=True)
        new = new_lv(world)
        have = f.lvm.get(name)
        size = have.size if have else 10 * GiB
        plans = {
            "create": attempt(lambda: ops.create(f, new, world.pick((GiB, 20 * GiB, 2000 * GiB, 0, -GiB)))),
            "rename": attempt(lambda: ops.rename(f, name, new)),
            "grow": attempt(lambda: ops.resize(f, name, size + GiB)),
            "shrink": attempt(lambda: ops.resize(f, name, max(size // 2, 1))),
            "snapshot": attempt(lambda: ops.snapshot(f, name, world.pick((None, GiB)), WHEN)),
            "merge": attempt(lambda: ops.merge(f, snap)),
            "remove": attempt(lambda: ops.remove(f, name)),
            "extend": attempt(lambda: ops.extend_full_snapshots(f, world.pick((50.0, 80.0)), GiB)),
        }
        for op, plan in plans.items():
            refused_when_bad({"create": new, "merge": snap, "extend": "vmx"}.get(op, name), plan)
            if op == "rename":
                refused_when_bad(new, plan)
            if plan is not None and changes(checked(world, plan)):
                seen[op] += 1

    prop()
    assert_minimums(seen, n, 0.05, LVM_OPS)


# -- the CLI's planning path -----------------------------------------------------------------

CLI = cli_parser()
CLI_OPS = ("create", "rename", "resize", "snapshot", "merge", "remove", "extend")


def cli_plan(argv: list[str], facts: HostFacts, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[Plan]]:
    """``kvmops lv ...`` in plan mode on the host of ``facts``: its exit code and the plans it
    showed. Only the facts read is replaced, for the planner and the executor's gate (and the
    site file is parsed once, not per case); parsing the arguments, planning and the executor
    (with its gate) are the CLI's."""
    shown: list[Plan] = []
    real = cli_common.show_and_apply

    def show(host: object, plan: Plan, args: argparse.Namespace, facts: HostFacts | None = None) -> int:
        shown.append(plan)
        return real(host, plan, args, facts)  # type: ignore[arg-type]

    monkeypatch.setattr(cli_common, "facts_of", lambda host, wanted=None: facts)  # lv's commands read through it
    monkeypatch.setattr(executor, "read_facts", lambda host, wanted=None: facts)  # the gate's facts
    monkeypatch.setattr(kvmops.site, "load_site", lambda path: facts.site)  # cli.common.site_of reads it
    monkeypatch.setattr(cli_common, "show_and_apply", show)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            args = CLI.parse_args(argv)
            code = int(args.func(args))
        except KvmopsError:
            code = 2  # what kvmops.cli.main prints as "kvmops: error: ..."
        except (SystemExit, argparse.ArgumentError):
            code = 2  # argparse refused the arguments (its usage message, exit 2)
    if code == 0:
        assert shown and shown[-1].render() in out.getvalue(), "the plan is shown before anything"
    return code, shown


def test_the_lv_cli_plans_from_the_facts_and_never_touches_what_is_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    n = cases(210)
    seen: Counter[str] = Counter()
    tried: Counter[str] = Counter()

    @run(n)
    @given(world=worlds())
    def prop(world: World) -> None:
        op = world.pick(CLI_OPS)
        tried[op] += 1
        name = lv_name(world, snapshots=op == "merge")
        size = world.pick(("5g", "1g", "40g", "0", "-1g", "x"))
        argv = {"create": ["create", new_lv(world), "--size", size],
                "rename": ["rename", name, world.pick(("vmnew", "vmweb1", "root"))],
                "resize": ["resize", name, "--size", size],
                "snapshot": ["snapshot", name],
                "merge": ["merge", name],
                "remove": ["remove", name],
                "extend": ["extend", "--threshold", "50"]}[op]
        with monkeypatch.context() as m:
            code, shown = cli_plan(["lv", *argv, "--site", "guide"], world.facts, m)
        assert code in (0, 2)
        if code == 0 and changes(checked(world, shown)):
            seen[op] += 1

    prop()
    assert_minimums(seen, tried, 0.05, CLI_OPS)


# -- images: the copy and the mapping --------------------------------------------------------


def test_an_image_is_never_copied_onto_or_mapped_from_an_lv_in_use() -> None:
    n = cases(200)
    seen: Counter[str] = Counter()

    @run(n)
    @given(world=worlds())
    def prop(world: World) -> None:
        f = world.facts
        name = lv_name(world)
        method = world.pick(("qemu-img", "dd", "auto"))
        plan = attempt(lambda: copy_plan(f, name, replace(f.image(IMAGE), format="raw"), method=method))
        refused_when_bad(name, plan)
        if plan is not None and changes(checked(world, plan)):
            seen["copy"] += 1
        runner = PlanRunner()  # no host: every read answers nothing, so the mapping stops after its guard
        with contextlib.suppress(KvmopsError), open_disk(runner, f, lv=f"{VG_NAME}/{name}", write=world.maybe(1, 2)):
            raise AssertionError("an empty answer has no partitions")
        if runner.records:  # past the guards: the partition table was read
            assert world.guest_lv(name) and world.lv_free(name), f"mapping {name}: {world.lv_in_use(name)}"
            assert not any(r.mutates for r in runner.records)
            seen["map"] += 1
        else:
            refused_when_bad(name, None)

    prop()
    assert_minimums(seen, n, 0.05, ("copy", "map"))


# -- guests ----------------------------------------------------------------------------------

LIFECYCLE = ("define", "redefine", "undefine", "destroy", "start", "shutdown")


def spec_of(name: str, data_lvs: tuple[str, ...], bridge: str) -> GuestSpec | None:
    try:
        return GuestSpec(name, 1048576, 1, (bridge,), data_lvs=data_lvs)
    except KvmopsError:
        return None


def test_guest_lifecycle_never_undefines_or_redefines_a_running_guest_nor_shares_a_disk() -> None:
    n = cases(250)
    seen: Counter[str] = Counter()

    @run(n)
    @given(world=worlds())
    def prop(world: World) -> None:
        f = world.facts
        name = guest_name(world)
        spec = spec_of(name, (lv_name(world),) if world.maybe(1, 2) else (), world.pick(SITE_BRIDGES))
        plans = {
            "define": attempt(lambda: lifecycle.define(f, spec)) if spec else None,
            "undefine": attempt(lambda: lifecycle.undefine(f, name)),
            "destroy": attempt(lambda: lifecycle.destroy(f, name)),
            "start": attempt(lambda: lifecycle.start(f, name)),
            "shutdown": attempt(lambda: lifecycle.shutdown(f, name)),
        }
        for op, plan in plans.items():
            if plan is None:
                continue
            done = checked(world, plan)
            if done is None:
                continue
            if op == "define" and any(e.action == "define" and e.target for e in done):
                seen["redefine"] += 1
            if changes(done):
                seen[op] += 1

    prop()
    assert_minimums(seen, n, 0.02, LIFECYCLE)


def test_guest_remove_confirms_every_target_and_removes_no_disk_in_use() -> None:
    n = cases(250)
    seen: Counter[str] = Counter()
    tried: Counter[str] = Counter()

    @run(n)
    @given(world=worlds())
    def prop(world: World) -> None:
        name, disks = defined_guest(world), not world.maybe(1, 3)
        tried.update(["undefine", *(["remove disks"] if disks else [])])
        try:
            proc = guest_remove.procedure(world.facts, name, disks)
        except KvmopsError:
            return
        done = checked(world, proc)
        if done is None:
            return
        removed = [e.obj for e in done if e.action == "remove"]
        if any(e.action == "undefine" for e in done):
            seen["undefine"] += 1
        if removed:
            seen["remove disks"] += 1
            assert {e.target for e in done if e.action == "remove"} == set(removed)

    prop()
    assert_minimums(seen, tried, 0.05, ("undefine", "remove disks"))


def test_lv_rename_renames_no_lv_in_use_and_redefines_no_running_guest() -> None:
    n = cases(250)
    seen: Counter[str] = Counter()

    @run(n)
    @given(world=worlds())
    def prop(world: World) -> None:
        old = named_lv(world)
        # a new name still named for the guest (the XML policy lets a guest have only its own LVs), or any
        new = f"{old}-old" if world.maybe(1, 2) else new_lv(world)
        try:
            lv_rename.names_of(SITE, old, new)
        except KvmopsError:
            assert old in HOST_LVS + BAD_NAMES or new in HOST_LVS + BAD_NAMES or old == new
            return
        try:
            proc = lv_rename.procedure(world.facts, old, new)
        except KvmopsError:
            return
        done = checked(world, proc)
        if done is None:
            return
        if any(e.action == "rename" for e in done):
            seen["rename"] += 1
        if any(e.action == "define" for e in done):
            seen["redefine users"] += 1

    prop()
    assert_minimums(seen, n, 0.05, ("rename",))
    # most users of an LV in the worlds run (the rename is refused) or are on bridges the XML policy refuses
    assert_minimums(seen, n, 0.01, ("redefine users",))


def test_host_recovery_starts_only_guests_that_are_off_and_changes_no_lv() -> None:
    n = cases(250)
    seen: Counter[str] = Counter()

    @run(n)
    @given(world=worlds())
    def prop(world: World) -> None:
        order = [g for g in GUESTS if world.maybe(1, 4)]
        try:
            proc = host_recovery.procedure(world.facts, order, 60.0)
        except KvmopsError:
            assert any(g not in world.domains for g in order)  # only an order naming no guest is refused
            return
        done = checked(world, proc)
        if done is None:
            return
        assert {e.action for e in done} <= {"start", "resume-merge-poll", "merged"}, done
        checks = {c.name: c for c in host_recovery.assess(world.facts)}
        for e in done:
            if e.action == "start":
                assert checks[e.obj].to_start and not world.domains[e.obj]
        for action in {e.action for e in done}:
            seen[action] += 1  # cases that reached it

    prop()
    assert_minimums(seen, n, 0.05, ("start",))


def test_guest_create_never_overwrites_an_lv_in_use_and_confirms_an_existing_one() -> None:
    n = cases(250)
    seen: Counter[str] = Counter()
    tried: Counter[str] = Counter()

    @run(n)
    @given(world=worlds())
    def prop(world: World) -> None:
        name = world.pick(NEW_GUESTS) if world.maybe(1, 3) else guest_name(world)
        tried["overwrite existing" if world.facts.lvm.get(f"{SITE.lv_prefix}{name}") else "fill new"] += 1
        setup = world.pick(gc.SETUPS)
        try:
            req = gc.request(SITE, name, vlans=str(world.pick(SITE.networks).vlan), memory="1g", vcpus=1,
                             size=world.pick(("20g", "1g", "2000g", "0")), image=IMAGE, setup=setup,
                             keys="" if setup == "none" else KEY)
            proc = gc.procedure(world.facts, req)
        except KvmopsError:
            return
        done = checked(world, proc)
        if done is None:
            return
        if any(e.action == "overwrite" for e in done):
            seen["overwrite existing" if world.facts.lvm.get(gc.lv_name(SITE, req)) else "fill new"] += 1

    prop()
    # an existing LV is accepted in ~5% of its ~4,000 cases (most are in use, or of another size):
    # a floor of 2% is far below that, so the share of random cases never fails the property alone
    assert_minimums(seen, tried, 0.02, ("overwrite existing", "fill new"))


# -- the network -----------------------------------------------------------------------------

BRIDGE_NAMES = (*SITE_BRIDGES, *SITE_BRIDGES, "virbr1.99", "br0", "virbr0", "virbr1.", "", "x" * 20)
VLANS = (*(n.vlan for n in SITE.networks), 99, 0)


def test_no_bridge_in_use_is_ever_removed_or_reactivated() -> None:
    n = cases(250)
    seen: Counter[str] = Counter()

    @run(n)
    @given(world=worlds())
    def prop(world: World) -> None:
        bridge = world.pick(BRIDGE_NAMES)
        removal = attempt(lambda: remove_bridge(world.facts, bridge))
        if removal is not None and changes(checked(world, removal)):
            seen["remove"] += 1
        ensure = attempt(lambda: ensure_network(world.facts, world.pick(VLANS), world.pick((None, True, False))))
        if ensure is not None:
            done = checked(world, ensure) or []
            assert not any(e.action == "delete-bridge" for e in done)
            if any(e.action in ("modify", "reapply") for e in done):
                seen["fix"] += 1
            if any(e.action == "add" for e in done):
                seen["add"] += 1

    prop()
    assert_minimums(seen, n, 0.05, ("remove", "fix", "add"))
