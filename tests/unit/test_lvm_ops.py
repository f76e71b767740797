"""LVM operations: facts from real captured reports in, plans out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kvmops.cmd import Cmd
from kvmops.errors import ConfirmationRequired, InvalidInput, NotFound, SafetyError
from kvmops.executor import confirmed, require_confirmed
from kvmops.host import Host
from kvmops.hostfacts import FactsUnavailable, HostFacts
from kvmops.lvm import ops
from kvmops.lvm.facts import LV, parse_lvs, parse_vgs
from kvmops.lvm.state import ACTIVATION_DISABLED, LvmState
from kvmops.plan import Wait
from kvmops.runners import LocalRunner, PlanRunner
from kvmops.site import load_site
from tests.support.facts import domain, host_facts
from tests.support.run import run_plan

FIX = Path(__file__).parent.parent / "fixtures" / "lvm"
SITE = load_site()
G = 1024**3


def state(name: str = "guide-host", vgs: str = "guide-host") -> LvmState:
    lvs = parse_lvs((FIX / f"{name}.lvs.out").read_text())
    (vg,) = parse_vgs((FIX / f"{vgs}.vgs.out").read_text())
    err = FIX / f"{name}.lvs.err"  # captured with activation disabled: LVM says so on stderr
    return LvmState(vg, lvs, ACTIVATION_DISABLED in (err.read_text() if err.exists() else ""))


def argvs(plan: ops.Plan) -> list[tuple[str, ...]]:
    return [s.effect.argv for s in plan.steps if isinstance(s.effect, Cmd)]


def facts(st: LvmState | None = None, *running: str) -> HostFacts:
    """The facts of ``st`` with a running guest for each of ``running`` (its disk an LV path)."""
    return host_facts(st or state(), domains=[domain(f"g{i}", f"/dev/{p}", active=True)
                                              for i, p in enumerate(running)])


def test_list_shows_guest_lvs_only() -> None:
    assert [lv.name for lv in ops.list_guest_lvs(SITE, state())] == ["vmvgcn-test2"]


def test_create_plans_lvcreate_as_the_guide() -> None:
    plan = ops.create(facts(state()), "vmtest1", 10 * G)
    assert argvs(plan) == [("lvcreate", "--name", "vmtest1", "--size", "10g",
                            "--wipesignatures", "y", "--yes", "rl_build")]
    assert "40.00 GiB free" in plan.render()


def test_create_is_a_noop_when_done_and_checks_free_space() -> None:
    assert ops.create(facts(state()), "vmvgcn-test2", 10 * G).empty
    with pytest.raises(InvalidInput, match="only 40.00 GiB free"):
        ops.create(facts(state()), "vmbig", 41 * G)
    with pytest.raises(InvalidInput, match="smaller than"):
        ops.create(facts(state()), "vmvgcn-test2", 20 * G)


@pytest.mark.parametrize("lv", ["root", "home", "opt"])
def test_host_lvs_are_never_touched(lv: str) -> None:
    st = state()
    for build in (
        lambda: ops.create(facts(st), lv, G),
        lambda: ops.resize(facts(st), lv, 200 * G),
        lambda: ops.snapshot(facts(st), lv),
        lambda: ops.remove(facts(st), lv),
        lambda: ops.rename(facts(st), lv, "vmroot"),
        lambda: ops.rename(facts(st), "vmvgcn-test2", lv),
        lambda: ops.merge(facts(st), lv),
    ):
        with pytest.raises(SafetyError, match="host LV"):
            build()


def test_rename() -> None:
    plan = ops.rename(facts(state()), "vmvgcn-test2", "vmtest3")
    assert argvs(plan) == [("lvrename", "rl_build", "vmvgcn-test2", "vmtest3")]
    with pytest.raises(NotFound):
        ops.rename(facts(state()), "vmnope", "vmtest3")


def test_resize_grow_and_shrink_needs_confirm() -> None:
    grow = ops.resize(facts(state()), "vmvgcn-test2", 20 * G)
    assert argvs(grow) == [("lvresize", "--size", "20g", "rl_build/vmvgcn-test2")]
    assert not grow.targets
    shrink = ops.resize(facts(state()), "vmvgcn-test2", 5 * G)
    assert shrink.targets == ["rl_build/vmvgcn-test2"]
    assert "LOST" in shrink.render()
    with pytest.raises(ConfirmationRequired, match="confirm='rl_build/vmvgcn-test2'"):
        require_confirmed([shrink], confirmed(None))
    with pytest.raises(ConfirmationRequired):
        require_confirmed([shrink], confirmed("rl_build"))
    require_confirmed([shrink], confirmed("rl_build/vmvgcn-test2"))
    with pytest.raises(SafetyError, match="shrinking refused.*running guest"):
        ops.resize(facts(state(), "rl_build/vmvgcn-test2"), "vmvgcn-test2", 5 * G)
    assert argvs(ops.resize(facts(state(), "rl_build/vmvgcn-test2"), "vmvgcn-test2", 20 * G))  # growing is fine
    with pytest.raises(InvalidInput, match="free"):
        ops.resize(facts(state()), "vmvgcn-test2", 60 * G)


def test_snapshot_name_is_utc_and_refused_on_running_guest() -> None:
    when = datetime(2024, 10, 6, 15, 18, tzinfo=UTC)
    plan = ops.snapshot(facts(state()), "vmvgcn-test2", 5 * G, when=when)
    assert argvs(plan) == [("lvcreate", "--snapshot", "--name", "vmvgcn-test2-20241006T1518Z",
                            "--size", "5g", "rl_build/vmvgcn-test2")]
    with pytest.raises(SafetyError, match="running guest g0"):
        ops.snapshot(facts(state(), "rl_build/vmvgcn-test2"), "vmvgcn-test2")


def test_snapshot_fill_report_and_extension() -> None:
    st = state("lab-snapshot", "guide-host")
    snaps = ops.snapshots(SITE, st)
    assert [(s.name, s.data_percent) for s in snaps] == [("vmtest2_snap", 78.44)]
    assert ops.extend_full_snapshots(facts(st)).empty  # 78.44 < 80
    plan = ops.extend_full_snapshots(facts(st), threshold=75)
    assert argvs(plan) == [("lvresize", "--size", "2176m", "rl_build/vmtest2_snap")]


def _lv(attr: str, percent: float | None = None, origin: str = "vmx") -> LV:
    return LV("vmx-20261120T0900Z", "rl_build", attr, G, origin, percent, None)


@pytest.mark.parametrize(("lv", "state"), [
    (_lv("swi-a-s---", 12.5), ops.OK),
    (_lv("swi-a-s---", 80.0), ops.FILLING_UP),  # at the threshold: extend it
    (_lv("swi-a-s---", None), ops.OK),
    (_lv("swi-I-s---", 100.0), ops.INVALID),  # overflowed: invalid comes first
    (_lv("Swi-a-s---", 95.0), ops.MERGING),
    (_lv("owi-a-s---", None, origin=""), ops.OK),
    (_lv("Owi-a-s---", None, origin=""), ops.MERGING),  # an origin being merged into
])
def test_one_snapshot_classification(lv: LV, state: str) -> None:
    assert ops.snapshot_state(lv, 80.0) == state


def test_merge_plan_waits_and_needs_confirm() -> None:
    st = state("lab-snapshot", "guide-host")
    plan = ops.merge(facts(st), "vmtest2_snap", interval=10)
    assert argvs(plan) == [("lvconvert", "--mergesnapshot", "rl_build/vmtest2_snap", "--interval", "10")]
    assert plan.targets == ["rl_build/vmtest2_snap"]  # the confirmation names the snapshot
    assert "taken 2026-11-25 21:35 UTC" in plan.render()
    assert isinstance(plan.steps[-1].effect, Wait) and "REMOVED" in plan.render()
    with pytest.raises(SafetyError, match="running guest"):
        ops.merge(facts(st, "rl_build/vmtest2"), "vmtest2_snap")
    with pytest.raises(InvalidInput, match="not a snapshot"):
        ops.merge(facts(st), "vmtest1")


def test_merge_refused_when_origin_open() -> None:
    st = state("lab-snapshot", "guide-host")
    opened = tuple(
        LV(lv.name, lv.vg, "owi-aos---", lv.size, lv.origin, lv.data_percent, lv.created)
        if lv.name == "vmtest2" else lv
        for lv in st.lvs
    )
    with pytest.raises(SafetyError, match="is open"):
        ops.merge(facts(LvmState(st.vg, opened)), "vmtest2_snap")


def test_remove_rules() -> None:
    st = state("lab-snapshot", "guide-host")
    plan = ops.remove(facts(st), "vmtest1")
    assert argvs(plan) == [("lvremove", "rl_build/vmtest1")]
    assert plan.targets == ["rl_build/vmtest1"]
    with pytest.raises(SafetyError, match="has snapshots"):
        ops.remove(facts(st), "vmtest2")
    with pytest.raises(SafetyError, match="running guest"):
        ops.remove(facts(st, "rl_build/vmtest1"), "vmtest1")
    stopped = host_facts(st, domains=[domain("t1", "/dev/rl_build/vmtest1")])
    with pytest.raises(SafetyError, match="is a disk of guest t1"):
        ops.remove(stopped, "vmtest1")
    assert ops.remove(facts(st), "vmgone").empty


def test_apply_refuses_before_anything_runs_without_confirm(tmp_path: Path) -> None:
    st = state("lab-snapshot", "guide-host")
    plan = ops.remove(facts(st), "vmtest1")
    runner = LocalRunner()
    host = Host(SITE, runner, "test:///default")
    with pytest.raises(ConfirmationRequired):
        run_plan(host, plan, confirm="rl_build/vmtest2")
    assert runner.records == []


def test_plan_mode_records_but_never_executes() -> None:
    st = state()
    plan = ops.create(facts(st), "vmtest1", G)
    runner = PlanRunner()
    lines = run_plan(Host(SITE, runner, "test:///default"), plan, facts=facts(st))
    assert lines == ["1. planned: create rl_build/vmtest1 (1.00 GiB; VG has 40.00 GiB free)"]
    assert [r.executed for r in runner.records] == [False]


def test_an_lv_whose_open_state_lvm_cannot_tell_is_refused() -> None:
    """'X' without LVM's own "Activation disabled" warning: unknown is never taken as closed."""
    unknown = LvmState(state().vg, state().lvs, activation_disabled=False)
    with pytest.raises(FactsUnavailable, match="cannot tell whether rl_build/vmvgcn-test2 is open"):
        ops.snapshot(facts(unknown), "vmvgcn-test2")
    assert argvs(ops.resize(facts(unknown), "vmvgcn-test2", 20 * G))  # growing needs no such answer
