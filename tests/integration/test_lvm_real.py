"""LVM for real: a loop-backed PV and VG made by the test; kvmops plans applied; the VG's
real state asserted. Without device-mapper (these machines) LVM runs with activation
disabled: create, rename, resize and remove work; snapshots are proven in the lab tier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.errors import ConfirmationRequired, SafetyError
from kvmops.facts import read_facts
from kvmops.facts.lvm import read_state
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.lvm import ops
from kvmops.lvm.state import LvmState
from kvmops.runners import LocalRunner, PlanRunner
from kvmops.site import load_site
from tests.conftest import need_tools
from tests.support.loop import scratch_vg
from tests.support.run import run_plan

pytestmark = pytest.mark.integration
M = 1024**2
SITE = load_site()


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    need_tools("lvm", "losetup")
    with scratch_vg(tmp_path, SITE.vg, "256M"):
        yield Host(SITE, LocalRunner("scratch"), "test:///default")


def now(host: Host) -> LvmState:
    return read_state(host.runner, SITE.vg)


def facts(host: Host) -> HostFacts:
    """The host's facts: the scratch VG's LVM report (activation disabled here, as LVM says),
    and libvirt's test driver for the guests."""
    return read_facts(host)


def test_create_rename_resize_remove_for_real(host: Host) -> None:
    run_plan(host, ops.create(facts(host), "vmtest1", 64 * M), progress=print)
    lv = now(host).need("vmtest1")
    assert lv.size == 64 * M and lv.path == "rl_build/vmtest1"
    assert ops.create(facts(host), "vmtest1", 64 * M).empty  # converges

    run_plan(host, ops.rename(facts(host), "vmtest1", "vmtest2"), progress=print)
    assert now(host).get("vmtest1") is None and now(host).get("vmtest2") is not None

    run_plan(host, ops.resize(facts(host), "vmtest2", 96 * M), progress=print)
    assert now(host).need("vmtest2").size == 96 * M

    shrink = ops.resize(facts(host), "vmtest2", 32 * M)
    with pytest.raises(ConfirmationRequired):
        run_plan(host, shrink, None)
    assert now(host).need("vmtest2").size == 96 * M  # unchanged
    run_plan(host, shrink, "rl_build/vmtest2", progress=print)
    assert now(host).need("vmtest2").size == 32 * M

    remove = ops.remove(facts(host), "vmtest2")
    with pytest.raises(ConfirmationRequired):
        run_plan(host, remove, "rl_build")
    assert now(host).get("vmtest2") is not None
    run_plan(host, remove, "rl_build/vmtest2", progress=print)
    assert now(host).get("vmtest2") is None
    assert now(host).vg.free == now(host).vg.size


def test_plan_mode_changes_nothing(host: Host) -> None:
    plan_host = Host(SITE, PlanRunner(host.runner), "test:///default")
    lines = run_plan(plan_host, ops.create(facts(plan_host), "vmtest1", 64 * M))
    assert lines[0].startswith("1. planned")
    assert now(host).get("vmtest1") is None


def test_free_space_and_host_lv_refused_before_any_command(host: Host) -> None:
    before = len(host.runner.records)
    state = facts(host)
    with pytest.raises(Exception, match="free"):
        ops.create(state, "vmhuge", 10 * 1024 * M)
    with pytest.raises(SafetyError):
        ops.create(state, "root", 8 * M)
    assert len(host.runner.records) == before + 2  # only the two LVM reads of the facts


def test_unknown_vg_is_a_clear_error(host: Host) -> None:
    with pytest.raises(Exception, match=r"volume group .nope. does not exist on scratch \(VGs there: rl_build\)"):
        read_state(host.runner, "nope")
