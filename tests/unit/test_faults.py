"""The fault-injection hook ($KVMOPS_FAULT_AT) and the FaultRunner: inert unless set, then
exactly the Nth selected command fails, unexecuted, and a plan names the step it broke."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kvmops.cmd import change, read
from kvmops.errors import CommandFailed, InvalidInput
from kvmops.executor import StepFailed
from kvmops.guests import hostfile
from kvmops.guests.spec import GuestSpec
from kvmops.guests.xml import render_domain_xml
from kvmops.host import Host
from kvmops.lvm.facts import VG
from kvmops.lvm.state import LvmState
from kvmops.plan import Call, Plan
from kvmops.runners import LocalRunner, PlanRunner, faults
from kvmops.runners.faults import FAULT_AT_ENV, FAULT_EXIT, FAULT_MATCH_ENV, FAULT_WHEN_ENV
from kvmops.site import load_site
from tests.support.facts import empty_facts, host_facts
from tests.support.faults import FaultRunner
from tests.support.run import run_plan


def test_unset_the_hook_does_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULT_AT_ENV, raising=False)
    runner = LocalRunner()
    for i in range(3):
        runner.run(change("touch", str(tmp_path / f"f{i}")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0", "f1", "f2"]


def test_the_nth_mutating_command_fails_unexecuted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_AT_ENV, "2")
    monkeypatch.setenv(FAULT_MATCH_ENV, f"touch {tmp_path}")  # a fresh setting: counting starts again
    runner = LocalRunner()
    runner.run(read("true"))  # does not match: not counted
    runner.run(change("touch", str(tmp_path / "a")))
    with pytest.raises(CommandFailed) as exc:
        runner.run(change("touch", str(tmp_path / "b")))
    assert exc.value.returncode == FAULT_EXIT and "injected fault: effect #2 failed before it ran" in str(exc.value)
    runner.run(change("touch", str(tmp_path / "c")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c"]  # b was never executed
    assert [r.returncode for r in runner.records] == [0, 0, FAULT_EXIT, 0]


def test_default_selection_counts_only_executed_mutations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_AT_ENV, "1")
    monkeypatch.setenv(FAULT_MATCH_ENV, "")
    faults.reset()  # the same setting may have been counted by an earlier test of this process
    plan_only = PlanRunner(LocalRunner())
    plan_only.run(change("touch", str(tmp_path / "x")))  # recorded, not executed: not counted
    plan_only.run(read("true"))
    with pytest.raises(CommandFailed, match="injected fault"):
        LocalRunner().run(change("touch", str(tmp_path / "y")))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("at", "match", "error"), [("0", "", "give the number"), ("x", "", "give the number"),
                                                    ("1", "(", "not a regular expression")])
def test_a_bad_setting_is_a_clear_error(at: str, match: str, error: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_AT_ENV, at)
    monkeypatch.setenv(FAULT_MATCH_ENV, match)
    with pytest.raises(InvalidInput, match=error):
        LocalRunner().run(change("true"))


def test_fault_runner_breaks_the_nth_step_of_a_plan(tmp_path: Path) -> None:
    site = replace(load_site(), xml_dir=str(tmp_path))
    plan = Plan("three files")
    for name in ("a", "b", "c"):
        plan.add(f"create {name}", hostfile.write_cmd(str(tmp_path / name), name))
    runner = FaultRunner(LocalRunner(), fail_at=2)
    host = Host(site, runner, "test:///default")
    with pytest.raises(StepFailed, match="create b") as exc:
        run_plan(host, plan, facts=empty_facts(site))
    assert "injected fault" in str(exc.value)
    assert runner.failed is not None and runner.failed.argv[-1] == str(tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # the plan stopped at the fault


def test_after_the_effect_ran_it_still_reports_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``KVMOPS_FAULT_WHEN=after``: the host did the work, the caller hears a failure (a lost
    connection): the file exists, the step failed."""
    monkeypatch.setenv(FAULT_AT_ENV, "1")
    monkeypatch.setenv(FAULT_MATCH_ENV, f"touch {tmp_path}")
    monkeypatch.setenv(FAULT_WHEN_ENV, "after")
    with pytest.raises(CommandFailed, match="failed after it ran"):
        LocalRunner().run(change("touch", str(tmp_path / "a")))
    assert (tmp_path / "a").exists()


@pytest.mark.parametrize("when", ["before", "after"])
def test_libvirt_calls_are_fault_injectable(when: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_AT_ENV, "1")
    monkeypatch.setenv(FAULT_MATCH_ENV, "^virsh define ")
    monkeypatch.setenv(FAULT_WHEN_ENV, when)
    host = Host(load_site(), LocalRunner(), "test:///default")
    xml = render_domain_xml(host.site, GuestSpec("x", 262144, 1, (), allow_no_network=True))
    plan = Plan("define").add("define guest x", Call("define", "x", "virsh define /root/kvm/x.xml", xml=xml))
    facts = host_facts(LvmState(VG("rl_build", 1 << 40, 1 << 40, 4 << 20, 0), ()))
    with pytest.raises(StepFailed, match=f"failed {when} it ran"):
        run_plan(host, plan, facts=facts)
    assert host.virt.exists("x") == (when == "after")  # the test driver has it only when the call ran
    assert [(r.command, r.returncode) for r in host.runner.records if r.command.startswith("virsh")] == [
        ("virsh define /root/kvm/x.xml", FAULT_EXIT)]


def test_a_bad_when_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_AT_ENV, "1")
    monkeypatch.setenv(FAULT_MATCH_ENV, "")
    monkeypatch.setenv(FAULT_WHEN_ENV, "later")
    with pytest.raises(InvalidInput, match="use before or after"):
        LocalRunner().run(change("true"))
