"""Plans and the one executor: rendering, order, no-ops, failing steps, libvirt calls, plan
mode, confirmations before the first change, procedures re-planned from fresh facts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kvmops.cmd import Cmd, Kind, change, read
from kvmops.errors import ConfirmationRequired
from kvmops.executor import Executor, Phase, Procedure, Refused, StepFailed, confirmed, execute_all
from kvmops.guests import hostfile
from kvmops.guests.domain import DomainInfo
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.lvm.facts import VG
from kvmops.lvm.state import LvmState
from kvmops.plan import Call, GuestOff, Plan, Wait
from kvmops.runners import LocalRunner, PlanRunner
from kvmops.site import Site, load_site
from tests.support.facts import domain, host_facts
from tests.support.run import run_plan

SITE = load_site()
EMPTY = LvmState(VG("rl_build", 100 << 30, 100 << 30, 4 << 20, 0), ())


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """The guide's site with its kept-XML folder in ``tmp_path/kvm``: plans write files there."""
    return replace(SITE, xml_dir=str(tmp_path / "kvm"))


def host(site: Site = SITE, apply: bool = True) -> Host:
    runner = LocalRunner()
    return Host(site, runner if apply else PlanRunner(runner), "test:///default")


def facts_of(site: Site, *guests: DomainInfo) -> HostFacts:
    return host_facts(EMPTY, site=site, domains=guests)


def write(site: Site, name: str, text: str = "x") -> Cmd:
    return hostfile.write_cmd(f"{site.xml_dir}/{name}", text)


def test_render_shows_reasons_commands_and_destructive_targets() -> None:
    plan = Plan("demo").add("first", read("lvs")).add("kill", change("lvremove", "rl_build/vmx"),
                                                     target="rl_build/vmx")
    plan.add("call", Call("start", "x"))
    plan.noop("already fine")
    assert plan.render().splitlines() == [
        "# Plan: demo",
        "# 1. first", "lvs",
        "# 2. kill  [DESTRUCTIVE: needs confirm=rl_build/vmx]", "lvremove rl_build/vmx",
        "# 3. call", "virsh start x",
        "# 4. already fine", "# nothing to do",
    ]
    assert plan._repr_markdown_().startswith("```sh\n# Plan: demo")


def test_apply_runs_in_order_and_reports(site: Site) -> None:
    plan = Plan("files").add("make a", write(site, "a")).noop("nothing").add("make b", write(site, "b"))
    said: list[str] = []
    lines = run_plan(host(site), plan, progress=said.append, facts=facts_of(site))
    assert (Path(site.xml_dir) / "a").exists() and (Path(site.xml_dir) / "b").exists()
    assert lines == ["1. done: make a", "2. ok (nothing to do): nothing", "3. done: make b"]
    assert said == ["step 1: make a", "step 3: make b"]


def test_failing_step_is_named_and_earlier_steps_stay_done(site: Site) -> None:
    Path(site.xml_dir).mkdir()
    (Path(site.xml_dir) / "blocker").write_text("a file, not a folder")
    plan = Plan("files").add("make a", write(site, "a")).add("break", write(site, "blocker/x")).add(
        "make c", write(site, "c"))
    with pytest.raises(StepFailed) as err:
        run_plan(host(site), plan, facts=facts_of(site))
    assert err.value.index == 2 and "step 2 failed (break)" in str(err.value)
    assert (Path(site.xml_dir) / "a").exists() and not (Path(site.xml_dir) / "c").exists()


def test_libvirt_call_errors_are_wrapped_and_recorded(site: Site) -> None:
    """The facts say a guest 'ghost' is defined; libvirt has none: its error names the call."""
    h = host(site)
    plan = Plan("x").add("call libvirt", Call("start", "ghost"))
    with pytest.raises(StepFailed, match=r"step 1 failed \(call libvirt\): .*ghost"):
        run_plan(h, plan, facts=facts_of(site, domain("ghost")))
    assert [(r.command, r.returncode, r.mutates) for r in h.runner.records if "virsh" in r.command] == [
        ("virsh start ghost", 1, True)]


def test_plan_mode_records_changes_and_calls_but_runs_neither(site: Site) -> None:
    h = host(site, apply=False)
    plan = (Plan("x").add("look", read("true"))
            .add("make a", write(site, "a"))
            .add("start", Call("start", "ghost"))
            .add("check a", read("test", "-e", f"{site.xml_dir}/a"))
            .add("wait", Wait("poll", GuestOff("ghost", 5))))
    lines = run_plan(h, plan, facts=facts_of(site, domain("ghost")))
    assert lines == ["1. done: look", "2. planned: make a", "3. planned: start",
                     "4. planned check (after the change): check a", "5. planned check (after the change): wait"]
    assert not (Path(site.xml_dir) / "a").exists()
    assert [(r.command.split()[0], r.executed) for r in h.runner.records] == [
        ("true", True), ("install", False), ("virsh", False)]


def test_every_confirmation_is_checked_before_the_first_change(site: Site) -> None:
    first = Plan("one").add("make a", write(site, "a"))
    second = Plan("two").add("replace b", write(site, "b"), target="b")
    with pytest.raises(ConfirmationRequired, match="confirm='b'.*nothing was changed"):
        execute_all(host(site), [first, second], confirmed("other"))
    assert not (Path(site.xml_dir) / "a").exists()
    execute_all(host(site), [first, second], confirmed("x, b"), progress=lambda _l: None, facts=facts_of(site))
    assert (Path(site.xml_dir) / "a").exists() and (Path(site.xml_dir) / "b").exists()


def test_a_phase_planned_again_with_a_new_target_is_refused(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host changed between the plan shown and the run: the new destructive target was
    never confirmed, so the phase changes nothing."""
    import kvmops.executor as ex

    monkeypatch.setattr(ex, "read_facts", lambda _h, _w=None: facts_of(site))
    shown = Plan("p").add("make a", write(site, "a"))
    now = Plan("p").add("wipe", write(site, "wiped"), target="rl_build/vmz")
    proc = Procedure("t").add(Phase("the phase", lambda _f: now), shown)
    with pytest.raises(ConfirmationRequired, match="the phase: planned again.*rl_build/vmz"):
        Executor(host(site), lambda _l: None).run_procedure(proc, confirmed())
    assert not Path(site.xml_dir).exists()


def test_the_gate_refuses_an_unknown_change_whoever_runs_it(site: Site) -> None:
    """A changing command the rules do not know is refused before the first step, in plan
    mode and applied, named with its rule; nothing runs."""
    plan = Plan("odd").add("make a", write(site, "a")).add("something", change("touch", "/tmp/x"))
    for apply in (False, True):
        h = host(site, apply=apply)
        with pytest.raises(Refused, match=r"step 2 \(`touch /tmp/x`\): a changing step .* \[rule known\]"):
            run_plan(h, plan, facts=facts_of(site))
        assert h.runner.records == [] and not Path(site.xml_dir).exists()


def test_kinds_decide_what_plan_mode_runs() -> None:
    assert read("x").kind is Kind.READ and not read("x").mutates
    assert change("x").mutates
    assert Call("start", "x", kind=Kind.READ).kind is Kind.READ
