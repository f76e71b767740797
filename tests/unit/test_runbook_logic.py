"""What the runbook cells call instead of branching themselves (issue 21): tables, defaults and
the display helpers, as functions over the demo host's facts (its recorded runner and libvirt
test driver) and over small plans."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest

from kvmops import notebook as nb
from kvmops.cmd import change
from kvmops.facts import read_facts
from kvmops.guests.inventory import inventory_of
from kvmops.host import Host, connect
from kvmops.hostfacts import HostFacts
from kvmops.plan import Plan
from kvmops.procedures import host_recovery as rec
from kvmops.procedures import inventory
from kvmops.procedures import lv as proc
from kvmops.procedures.base import PreconditionFailed, Verdict
from kvmops.procedures.stages import Ran, Stage, Staged
from kvmops.site import load_site, resolve_site
from kvmops.units import size_or

G = 1 << 30


@pytest.fixture(scope="module")
def host() -> Host:
    return connect(load_site(resolve_site("demo")))


@pytest.fixture(scope="module")
def facts(host: Host) -> HostFacts:
    return read_facts(host, inventory.wanted(True))


def test_size_parameters_fall_back_to_their_default() -> None:
    assert size_or("", None) is None
    assert size_or("", 2 * G) == 2 * G
    assert size_or("5g", None) == 5 * G


def test_snapshot_fill_table_and_threshold(facts: HostFacts) -> None:
    assert proc.fill_threshold(facts.site) == facts.site.snapshot_extend_at == 80
    assert proc.fill_threshold(facts.site, 10.0) == 10.0
    table = proc.fill_table(facts, 80.0)
    assert table.headers[-1] == "state"
    assert [(r[0], r[-1]) for r in table.rows] == [("rl_build/vmtest1-20261124T0815Z", "FILLING UP"),
                                                   ("rl_build/vminflux-20261120T0900Z", "ok")]
    assert [r[-1] for r in proc.fill_table(facts, 10.0).rows] == ["FILLING UP", "FILLING UP"]
    shown = proc.extend(facts, 80.0, 2 * G).preview[0].render()
    assert "# NOTE: threshold 80%, extend by 2.00 GiB; VG rl_build has 592.00 GiB free" in shown


def test_the_snapshots_to_roll_back_to(facts: HostFacts) -> None:
    table = proc.snapshot_table(facts, "influx")
    assert table.rows == [("vminflux-20261120T0900Z", "2026-11-20 09:00 UTC", "5.00 GiB", "12.50%", "ok")]
    assert proc.snapshot_table(facts, "nosuch").rows == []


def test_inventory_of_guest_lvs_flags_what_needs_attention(facts: HostFacts) -> None:
    table = inventory.lv_table(facts, inventory_of(facts))
    rows = {r[0]: r for r in table.rows}
    assert rows["rl_build/vmtest1-20261124T0815Z"][4:] == ("test1", "FILLING UP")
    assert rows["rl_build/vminflux"][4:] == ("influx", "")
    assert rows["rl_build/vmold"][4:] == ("(no guest)", "")
    assert inventory.vg_line(facts) == "VG rl_build: 592.00 GiB free of 892.00 GiB"
    assert inventory.bridges(facts, False) == "skipped (bridges=False)"
    assert "DRIFT: virbr1.2367: bridge missing" in inventory.bridges(facts, True)


def test_recovery_order_and_table(facts: HostFacts) -> None:
    assert rec.order_of(facts.site, "db1, web1") == ("db1", "web1")
    assert rec.order_of(facts.site) == facts.site.recovery_order
    table = rec.table([rec.GuestCheck("a", "autostart is on", False, (), ()), rec.GuestCheck("b", "", True, (), ())])
    assert table.rows == [("a", "autostart is on", "no", "start"), ("b", "-", "yes", "leave off (not meant to run)")]


# -- the display helpers ----------------------------------------------------------------------


def test_show_lines_and_plans(capsys: pytest.CaptureFixture[str]) -> None:
    nb.show_lines([])
    nb.show_plans([])
    assert capsys.readouterr().out == ""
    nb.show_lines(["a", "b"])
    nb.show_plans([Plan("p").noop("already so")])
    assert capsys.readouterr().out == "a\nb\n# Plan: p\n# 1. already so\n# nothing to do\n"


def _staged(plan: Plan) -> Staged[None]:
    return Staged("s").add(Stage("one", "source", lambda _c: plan), plan)


def test_a_run_of_stages_is_shown_with_the_plan_only_note(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    ran = Ran(["[source] 1. planned: change it"], ())
    assert nb.show_ran(host, _staged(Plan("p").add("change it", change("true"))), ran) is ran
    assert capsys.readouterr().out.splitlines() == [
        "[source] 1. planned: change it", "(plan only: nothing was changed; run with apply=True to execute it)"]
    nb.show_ran(host, _staged(Plan("p").noop("already so")), Ran(["[source] 1. ok (nothing to do)"], ()))
    assert "plan only" not in capsys.readouterr().out  # nothing to change: nothing to say about it


def test_verify_with_judges_only_after_an_applied_run(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    def never() -> Verdict:
        raise AssertionError("plan mode verifies nothing")

    assert nb.verify_with(host, never) is None
    assert capsys.readouterr().out == "plan only: nothing was changed, so nothing is verified\n"
    applied = cast(Host, SimpleNamespace(apply=True))
    assert nb.verify_with(applied, lambda: Verdict.of([(True, "it holds")])) is not None
    with pytest.raises(PreconditionFailed, match="FAILED: it holds not"):
        nb.verify_with(applied, lambda: Verdict.of([(False, "it holds not")]))
    assert capsys.readouterr().out == "ok: it holds\nFAILED: it holds not\n"


def test_judge_shows_the_verdict_and_raises_naming_what_failed(capsys: pytest.CaptureFixture[str]) -> None:
    ok = Verdict.of([(True, "a holds")])
    assert nb.judge(ok) is ok
    with pytest.raises(PreconditionFailed, match="verification FAILED: FAILED: b holds"):
        nb.judge(Verdict.of([(True, "a holds"), (False, "b holds")]))
    assert capsys.readouterr().out == "ok: a holds\nok: a holds\nFAILED: b holds\n"
