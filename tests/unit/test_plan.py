"""Plans: rendering, no-ops, confirm, and a failing step that names itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops.cmd import change, read
from kvmops.errors import KvmopsError
from kvmops.host import Host
from kvmops.plan import Action, Plan, StepFailed
from kvmops.runners import LocalRunner
from kvmops.site import load_site

SITE = load_site()


def host() -> Host:
    return Host(SITE, LocalRunner(), "test:///default")


def test_render_shows_reasons_commands_and_destructive_targets() -> None:
    plan = Plan("demo").add("first", read("lvs")).add("kill", change("lvremove", "rl_build/vmx"),
                                                     target="rl_build/vmx")
    plan.noop("already fine")
    text = plan.render()
    assert text.splitlines() == [
        "# Plan: demo",
        "# 1. first", "lvs",
        "# 2. kill  [DESTRUCTIVE: needs confirm=rl_build/vmx]", "lvremove rl_build/vmx",
        "# 3. already fine", "# nothing to do",
    ]
    assert plan._repr_markdown_().startswith("```sh\n# Plan: demo")


def test_apply_runs_in_order_and_reports(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    plan = Plan("files").add("make a", change("touch", str(a))).noop("nothing").add("make b", change("touch", str(b)))
    said: list[str] = []
    lines = plan.apply(host(), progress=said.append)
    assert a.exists() and b.exists()
    assert lines == ["1. done: make a", "2. ok (nothing to do): nothing", "3. done: make b"]
    assert said == ["step 1: make a", "step 3: make b"]


def test_failing_step_is_named_and_earlier_steps_stay_done(tmp_path: Path) -> None:
    a, c = tmp_path / "a", tmp_path / "c"
    plan = (Plan("files").add("make a", change("touch", str(a)))
            .add("break", change("ls", str(tmp_path / "missing")))
            .add("make c", change("touch", str(c))))
    with pytest.raises(StepFailed) as err:
        plan.apply(host(), progress=lambda _: None)
    assert err.value.index == 2 and "step 2 failed (break)" in str(err.value)
    assert a.exists() and not c.exists()


def test_action_errors_are_wrapped_too() -> None:
    def boom(_h: Host, _p: object) -> None:
        raise KvmopsError("libvirt said no")

    plan = Plan("x").add("call libvirt", action=Action("defineXML", boom))
    with pytest.raises(StepFailed, match="step 1 failed \\(call libvirt\\): libvirt said no"):
        plan.apply(host(), progress=lambda _: None)
