"""A fleet host read in one command: ``lvm fullreport`` (real output captured from two VGs on
loop devices, tests/fixtures/fleet/) parsed by the same parsers gives exactly what
``vgs`` and ``lvs VG`` give; the fleet's reader runs it once, before libvirt, and nothing
else; a VG that is not there is named with the VGs that are."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kvmops.cmd import Cmd, Result
from kvmops.errors import NotFound
from kvmops.facts import read_facts
from kvmops.facts.fleet import OneRead
from kvmops.facts.lvm import read_state, read_state_at_once
from kvmops.host import Host
from kvmops.lvm.facts import parse_lvs, parse_vgs, report_cmd
from kvmops.runners import PlanRunner
from kvmops.runners.base import LineSink, Runner
from kvmops.site import load_site

FIX = Path(__file__).parent.parent / "fixtures" / "fleet"


class Captured(Runner):
    """Answers vgs, lvs and lvm fullreport with the captured outputs; keeps what it ran."""

    def __init__(self) -> None:
        super().__init__()
        self.host = "kvm1"
        self.ran: list[str] = []

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        name = {"vgs": "vgs", "lvs": "lvs", "lvm": "fullreport"}[cmd.argv[0]]
        self.ran.append(cmd.display())
        out, err = (FIX / f"{name}.out").read_text(), (FIX / f"{name}.err").read_text()
        return Result(cmd, self.host, 0, out, err, 0.0)


def test_the_full_report_parses_as_vgs_and_lvs() -> None:
    report = (FIX / "fullreport.out").read_text()
    by_name = sorted(parse_vgs(report), key=lambda v: v.name)  # one report per VG, in LVM's order
    assert tuple(by_name) == parse_vgs((FIX / "vgs.out").read_text())
    assert [v.name for v in by_name] == ["rl_build", "vg_other"]
    mine = tuple(lv for lv in parse_lvs(report) if lv.vg == "rl_build")
    assert mine == parse_lvs((FIX / "lvs.out").read_text())
    assert [lv.name for lv in mine] == ["vminflux", "vmweb1"] and mine[0].tags == (
        "kvmops-move-from:build:rl_build/vminflux",)
    argv = report_cmd().argv
    assert argv[:3] == ("lvm", "fullreport", "--reportformat") and "-a" in argv and not report_cmd().mutates


def test_one_command_gives_the_state_two_give() -> None:
    two, one = Captured(), Captured()
    assert read_state_at_once(one, "rl_build") == read_state(two, "rl_build")
    assert len(one.ran) == 1 and len(two.ran) == 2
    assert read_state_at_once(one, "rl_build").activation_disabled  # LVM's warning, on stderr
    with pytest.raises(NotFound, match=r"'vg_guests' does not exist on kvm1 \(VGs there: rl_build, vg_other\)"):
        read_state_at_once(one, "vg_guests")


def test_the_fleet_reader_runs_one_command_first() -> None:
    runner = Captured()
    site = replace(load_site(), vg="rl_build", libvirt_uri="test:///default")
    host = Host(site, PlanRunner(runner), "test:///default")
    source = OneRead(host)
    facts = read_facts(host, source=source)
    assert runner.ran == [" ".join(report_cmd().argv)]  # one command, nothing else over SSH
    assert facts.lvm == read_state(Captured(), "rl_build") and facts.domains  # the test driver's guest
    host.close()
