"""Plans and the one executor: rendering, order, no-ops, failing steps, libvirt calls, plan
mode, confirmations before the first change, procedures re-planned from fresh facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops.cmd import Kind, change, read
from kvmops.errors import ConfirmationRequired, KvmopsError
from kvmops.executor import Executor, Phase, Procedure, StepFailed, confirmed, execute_all
from kvmops.host import Host
from kvmops.plan import Call, Plan, Wait
from kvmops.runners import LocalRunner, PlanRunner
from kvmops.site import load_site
from tests.support.run import run_plan

SITE = load_site()


def host(apply: bool = True) -> Host:
    runner = LocalRunner()
    return Host(SITE, runner if apply else PlanRunner(runner), "test:///default")


def test_render_shows_reasons_commands_and_destructive_targets() -> None:
    plan = Plan("demo").add("first", read("lvs")).add("kill", change("lvremove", "rl_build/vmx"),
                                                     target="rl_build/vmx")
    plan.add("call", Call("virsh start x", lambda v: None))
    plan.noop("already fine")
    assert plan.render().splitlines() == [
        "# Plan: demo",
        "# 1. first", "lvs",
        "# 2. kill  [DESTRUCTIVE: needs confirm=rl_build/vmx]", "lvremove rl_build/vmx",
        "# 3. call", "virsh start x",
        "# 4. already fine", "# nothing to do",
    ]
    assert plan._repr_markdown_().startswith("```sh\n# Plan: demo")


def test_apply_runs_in_order_and_reports(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    plan = Plan("files").add("make a", change("touch", str(a))).noop("nothing").add("make b", change("touch", str(b)))
    said: list[str] = []
    lines = run_plan(host(), plan, progress=said.append)
    assert a.exists() and b.exists()
    assert lines == ["1. done: make a", "2. ok (nothing to do): nothing", "3. done: make b"]
    assert said == ["step 1: make a", "step 3: make b"]


def test_failing_step_is_named_and_earlier_steps_stay_done(tmp_path: Path) -> None:
    a, c = tmp_path / "a", tmp_path / "c"
    plan = (Plan("files").add("make a", change("touch", str(a)))
            .add("break", change("ls", str(tmp_path / "missing")))
            .add("make c", change("touch", str(c))))
    with pytest.raises(StepFailed) as err:
        run_plan(host(), plan)
    assert err.value.index == 2 and "step 2 failed (break)" in str(err.value)
    assert a.exists() and not c.exists()


def test_libvirt_call_errors_are_wrapped_and_recorded() -> None:
    def boom(_v: object) -> None:
        raise KvmopsError("libvirt said no")

    h = host()
    plan = Plan("x").add("call libvirt", Call("virsh define x.xml", boom))
    with pytest.raises(StepFailed, match="step 1 failed \\(call libvirt\\): libvirt said no"):
        run_plan(h, plan)
    assert [(r.command, r.returncode, r.mutates) for r in h.runner.records] == [("virsh define x.xml", 1, True)]


def test_plan_mode_records_changes_and_calls_but_runs_neither(tmp_path: Path) -> None:
    made: list[str] = []
    h = host(apply=False)
    plan = (Plan("x").add("look", read("true"))
            .add("make a", change("touch", str(tmp_path / "a")))
            .add("define", Call("virsh define a.xml", lambda v: made.append("define")))
            .add("check a", read("test", "-e", str(tmp_path / "a")))
            .add("wait", Wait("poll", lambda h, p: made.append("wait"))))
    lines = run_plan(h, plan)
    assert lines == ["1. done: look", "2. planned: make a", "3. planned: define",
                     "4. planned check (after the change): check a", "5. planned check (after the change): wait"]
    assert made == [] and not (tmp_path / "a").exists()
    assert [(r.command.split()[0], r.executed) for r in h.runner.records] == [
        ("true", True), ("touch", False), ("virsh", False)]


def test_every_confirmation_is_checked_before_the_first_change(tmp_path: Path) -> None:
    first = Plan("one").add("make a", change("touch", str(tmp_path / "a")))
    second = Plan("two").add("remove b", change("true"), target="rl_build/vmb")
    with pytest.raises(ConfirmationRequired, match="confirm='rl_build/vmb'.*nothing was changed"):
        execute_all(host(), [first, second], confirmed("rl_build/vmother"))
    assert not (tmp_path / "a").exists()
    execute_all(host(), [first, second], confirmed("x, rl_build/vmb"), progress=lambda _l: None)
    assert (tmp_path / "a").exists()


def test_a_phase_planned_again_with_a_new_target_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host changed between the plan shown and the run: the new destructive target was
    never confirmed, so the phase changes nothing."""
    import kvmops.executor as ex

    monkeypatch.setattr(ex, "read_facts", lambda _h, _w=None: None)
    shown = Plan("p").add("make a", change("touch", str(tmp_path / "a")))
    now = Plan("p").add("wipe", change("touch", str(tmp_path / "wiped")), target="rl_build/vmz")
    proc = Procedure("t").add(Phase("the phase", lambda _f: now), shown)
    with pytest.raises(ConfirmationRequired, match="the phase: planned again.*rl_build/vmz"):
        Executor(host(), lambda _l: None).run_procedure(proc, confirmed())
    assert list(tmp_path.iterdir()) == []


def test_kinds_decide_what_plan_mode_runs() -> None:
    assert read("x").kind is Kind.READ and not read("x").mutates
    assert change("x").mutates
    assert Call("virsh list", lambda v: None, Kind.READ).kind is Kind.READ
