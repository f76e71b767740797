"""Properties over the LVM builders and operations: for random names and sizes, no forbidden
command is ever built, and invalid input is rejected before a command exists. (Over whole
random hosts: tests/unit/test_safety_properties.py, with 10,000 cases in CI.)"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kvmops import guards
from kvmops.errors import KvmopsError
from kvmops.hostfacts import HostFacts
from kvmops.lvm import ops
from kvmops.lvm.facts import parse_lvs, parse_vgs
from kvmops.lvm.state import LvmState
from kvmops.plan import Plan
from kvmops.site import load_site
from tests.support.facts import domain, host_facts
from tests.support.properties import cases

FIX = Path(__file__).parent.parent / "fixtures" / "lvm"
SITE = load_site()
STATE = LvmState(
    parse_vgs((FIX / "guide-host.vgs.out").read_text())[0],
    parse_lvs((FIX / "lab-snapshot.lvs.out").read_text()) + parse_lvs((FIX / "guide-host.lvs.out").read_text()),
)
HOST_LVS = {"root", "home", "opt"}
names = st.one_of(
    st.text(min_size=0, max_size=80),
    st.sampled_from(["root", "home", "opt", "vm", "vmtest1", "vmtest2", "vmtest2_snap", "vmvgcn-test2", "-y",
                     "--force", "rl_build", "vm/..", "vm x", "vm;rm"]),
    st.from_regex(r"vm[A-Za-z0-9_.+-]{0,70}", fullmatch=True),
)
sizes = st.integers(min_value=-(2**40), max_value=2**42)
busy_sets = st.sets(st.sampled_from(["rl_build/vmtest1", "rl_build/vmtest2", "rl_build/vmvgcn-test2"]))


def commands(plan: Plan) -> list[tuple[str, ...]]:
    return [s.cmd.argv for s in plan.steps if s.cmd is not None]


def assert_safe(plan: Plan, busy: set[str]) -> None:
    for argv in commands(plan):
        if argv[0] == "lvremove":
            guards.lvremove_argv(argv)  # raises if forbidden
        touched = [a.split("/")[-1] for a in argv if a.startswith("rl_build/")]
        assert not HOST_LVS.intersection(touched), argv
        if argv[0] == "lvcreate" and "--snapshot" in argv:
            assert argv[-1] not in busy, argv  # the origin of the new snapshot
        if argv[0] == "lvconvert":
            snap = STATE.need(argv[argv.index("--mergesnapshot") + 1].split("/")[1])
            assert f"rl_build/{snap.origin}" not in busy, argv


def facts(busy: set[str]) -> HostFacts:
    return host_facts(STATE, domains=[domain(f"g{i}", f"/dev/{p}", active=True) for i, p in enumerate(sorted(busy))])


def build(fn: object) -> Plan | None:
    try:
        return fn()  # type: ignore[operator,no-any-return]
    except KvmopsError:
        return None


@settings(max_examples=cases(300, ci=2000), deadline=None)
@given(lv=names, size=sizes, busy=busy_sets)
def test_no_forbidden_command_is_ever_built(lv: str, size: int, busy: set[str]) -> None:
    for plan in (
        build(lambda: ops.create(facts(busy), lv, size)),
        build(lambda: ops.resize(facts(busy), lv, size)),
        build(lambda: ops.snapshot(facts(busy), lv, size if size > 0 else None)),
        build(lambda: ops.merge(facts(busy), lv)),
        build(lambda: ops.remove(facts(busy), lv)),
        build(lambda: ops.rename(facts(busy), "vmtest1", lv)),
    ):
        if plan is not None:
            assert_safe(plan, busy)


@settings(max_examples=cases(300, ci=2000), deadline=None)
@given(lv=names, busy=busy_sets)
def test_removal_only_ever_targets_one_confirmed_guest_lv(lv: str, busy: set[str]) -> None:
    plan = build(lambda: ops.remove(facts(busy), lv))
    if plan is None or plan.empty:
        return
    (argv,) = commands(plan)
    assert argv == ("lvremove", f"rl_build/{lv}")
    assert plan.targets == [f"rl_build/{lv}"]
    assert lv.startswith("vm") and lv not in HOST_LVS
    assert f"rl_build/{lv}" not in busy


@settings(max_examples=cases(200, ci=2000), deadline=None)
@given(size=st.integers(max_value=0))
def test_non_positive_sizes_never_reach_a_command(size: int) -> None:
    assert build(lambda: ops.create(facts(set()), "vmnew", size)) is None
