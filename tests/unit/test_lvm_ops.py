"""LVM operations: facts from real captured reports in, plans out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kvmops.errors import ConfirmationRequired, InvalidInput, NotFound, SafetyError
from kvmops.host import Host
from kvmops.lvm import ops
from kvmops.lvm.facts import LV, parse_lvs, parse_vgs
from kvmops.lvm.state import LvmState
from kvmops.runners import LocalRunner, PlanRunner
from kvmops.site import load_site

FIX = Path(__file__).parent.parent / "fixtures" / "lvm"
SITE = load_site()
G = 1024**3


def state(name: str = "guide-host", vgs: str = "guide-host") -> LvmState:
    lvs = parse_lvs((FIX / f"{name}.lvs.out").read_text())
    (vg,) = parse_vgs((FIX / f"{vgs}.vgs.out").read_text())
    return LvmState(vg, lvs)


def argvs(plan: ops.Plan) -> list[tuple[str, ...]]:
    return [s.cmd.argv for s in plan.steps if s.cmd is not None]


def test_list_shows_guest_lvs_only() -> None:
    assert [lv.name for lv in ops.list_guest_lvs(SITE, state())] == ["vmvgcn-test2"]


def test_create_plans_lvcreate_as_the_guide() -> None:
    plan = ops.create(SITE, state(), "vmtest1", 10 * G)
    assert argvs(plan) == [("lvcreate", "--name", "vmtest1", "--size", "10g",
                            "--wipesignatures", "y", "--yes", "rl_build")]
    assert "40.00 GiB free" in plan.render()


def test_create_is_a_noop_when_done_and_checks_free_space() -> None:
    assert ops.create(SITE, state(), "vmvgcn-test2", 10 * G).empty
    with pytest.raises(InvalidInput, match="only 40.00 GiB free"):
        ops.create(SITE, state(), "vmbig", 41 * G)
    with pytest.raises(InvalidInput, match="smaller than"):
        ops.create(SITE, state(), "vmvgcn-test2", 20 * G)


@pytest.mark.parametrize("lv", ["root", "home", "opt"])
def test_host_lvs_are_never_touched(lv: str) -> None:
    st = state()
    for build in (
        lambda: ops.create(SITE, st, lv, G),
        lambda: ops.resize(SITE, st, lv, 200 * G),
        lambda: ops.snapshot(SITE, st, lv),
        lambda: ops.remove(SITE, st, lv),
        lambda: ops.rename(SITE, st, lv, "vmroot"),
        lambda: ops.rename(SITE, st, "vmvgcn-test2", lv),
        lambda: ops.merge(SITE, st, lv),
    ):
        with pytest.raises(SafetyError, match="host LV"):
            build()


def test_rename() -> None:
    plan = ops.rename(SITE, state(), "vmvgcn-test2", "vmtest3")
    assert argvs(plan) == [("lvrename", "rl_build", "vmvgcn-test2", "vmtest3")]
    with pytest.raises(NotFound):
        ops.rename(SITE, state(), "vmnope", "vmtest3")


def test_resize_grow_and_shrink_needs_confirm() -> None:
    grow = ops.resize(SITE, state(), "vmvgcn-test2", 20 * G)
    assert argvs(grow) == [("lvresize", "--size", "20g", "rl_build/vmvgcn-test2")]
    assert not grow.targets
    shrink = ops.resize(SITE, state(), "vmvgcn-test2", 5 * G)
    assert shrink.targets == ["rl_build/vmvgcn-test2"]
    assert "LOST" in shrink.render()
    with pytest.raises(ConfirmationRequired, match="confirm='rl_build/vmvgcn-test2'"):
        shrink.check_confirm(None)
    with pytest.raises(ConfirmationRequired):
        shrink.check_confirm("rl_build")
    shrink.check_confirm("rl_build/vmvgcn-test2")
    with pytest.raises(InvalidInput, match="free"):
        ops.resize(SITE, state(), "vmvgcn-test2", 60 * G)


def test_snapshot_name_is_utc_and_refused_on_running_guest() -> None:
    when = datetime(2024, 10, 6, 15, 18, tzinfo=UTC)
    plan = ops.snapshot(SITE, state(), "vmvgcn-test2", 5 * G, when=when)
    assert argvs(plan) == [("lvcreate", "--snapshot", "--name", "vmvgcn-test2-20241006T1518Z",
                            "--size", "5g", "rl_build/vmvgcn-test2")]
    with pytest.raises(SafetyError, match="running guest"):
        ops.snapshot(SITE, state(), "vmvgcn-test2", busy={"rl_build/vmvgcn-test2"})


def test_snapshot_fill_report_and_extension() -> None:
    st = state("lab-snapshot", "guide-host")
    snaps = ops.snapshots(SITE, st)
    assert [(s.name, s.data_percent) for s in snaps] == [("vmtest2_snap", 78.44)]
    assert ops.extend_full_snapshots(SITE, st).empty  # 78.44 < 80
    plan = ops.extend_full_snapshots(SITE, st, threshold=75)
    assert argvs(plan) == [("lvresize", "--size", "2176m", "rl_build/vmtest2_snap")]


def test_merge_plan_waits_and_needs_confirm() -> None:
    st = state("lab-snapshot", "guide-host")
    plan = ops.merge(SITE, st, "vmtest2_snap", interval=10)
    assert argvs(plan) == [("lvconvert", "--mergesnapshot", "rl_build/vmtest2_snap", "--interval", "10")]
    assert plan.targets == ["rl_build/vmtest2"]
    assert plan.steps[-1].action is not None and "REMOVED" in plan.render()
    with pytest.raises(SafetyError, match="running guest"):
        ops.merge(SITE, st, "vmtest2_snap", busy={"rl_build/vmtest2"})
    with pytest.raises(InvalidInput, match="not a snapshot"):
        ops.merge(SITE, st, "vmtest1")


def test_merge_refused_when_origin_open() -> None:
    st = state("lab-snapshot", "guide-host")
    opened = tuple(
        LV(lv.name, lv.vg, "owi-aos---", lv.size, lv.origin, lv.data_percent, lv.created)
        if lv.name == "vmtest2" else lv
        for lv in st.lvs
    )
    with pytest.raises(SafetyError, match="is open"):
        ops.merge(SITE, LvmState(st.vg, opened), "vmtest2_snap")


def test_remove_rules() -> None:
    st = state("lab-snapshot", "guide-host")
    plan = ops.remove(SITE, st, "vmtest1")
    assert argvs(plan) == [("lvremove", "rl_build/vmtest1")]
    assert plan.targets == ["rl_build/vmtest1"]
    with pytest.raises(SafetyError, match="has snapshots"):
        ops.remove(SITE, st, "vmtest2")
    with pytest.raises(SafetyError, match="running guest"):
        ops.remove(SITE, st, "vmtest1", busy={"rl_build/vmtest1"})
    assert ops.remove(SITE, st, "vmgone").empty


def test_apply_refuses_before_anything_runs_without_confirm(tmp_path: Path) -> None:
    st = state("lab-snapshot", "guide-host")
    plan = ops.remove(SITE, st, "vmtest1")
    runner = LocalRunner()
    host = Host(SITE, runner, "test:///default")
    with pytest.raises(ConfirmationRequired):
        plan.apply(host, confirm="rl_build/vmtest2")
    assert runner.records == []


def test_plan_mode_records_but_never_executes() -> None:
    st = state()
    plan = ops.create(SITE, st, "vmtest1", G)
    runner = PlanRunner()
    lines = plan.apply(Host(SITE, runner, "test:///default"))
    assert lines == ["1. planned: create rl_build/vmtest1 (1.00 GiB; VG has 40.00 GiB free)"]
    assert [r.executed for r in runner.records] == [False]
