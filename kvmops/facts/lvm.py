"""The site's volume group and its LVs, read through the host's runner (``vgs``, ``lvs``; or
both reports in one command, ``lvm fullreport``, where one round trip matters: the fleet)."""

from __future__ import annotations

from kvmops.errors import NotFound
from kvmops.lvm.facts import VG, lvs_cmd, parse_lvs, parse_vgs, report_cmd, vgs_cmd
from kvmops.lvm.state import ACTIVATION_DISABLED, LvmState
from kvmops.runners.base import Runner


def read_state(runner: Runner, vg: str) -> LvmState:
    """Run ``vgs VG`` and ``lvs VG`` (read-only, also in plan mode) and parse them."""
    the_vg = _the_vg(parse_vgs(runner.run(vgs_cmd(), check=True).stdout), vg, runner.host)
    report = runner.run(lvs_cmd(vg))
    return LvmState(the_vg, parse_lvs(report.stdout), ACTIVATION_DISABLED in report.stderr)


def read_state_at_once(runner: Runner, vg: str) -> LvmState:
    """The same state from one command (``lvm fullreport``: every VG and its LVs), parsed by
    the same parsers; the LVs of the other VGs are left out."""
    report = runner.run(report_cmd(), check=True)
    the_vg = _the_vg(parse_vgs(report.stdout), vg, runner.host)
    lvs = tuple(lv for lv in parse_lvs(report.stdout) if lv.vg == vg)
    return LvmState(the_vg, lvs, ACTIVATION_DISABLED in report.stderr)


def _the_vg(vgs: tuple[VG, ...], vg: str, host: str) -> VG:
    match = [v for v in vgs if v.name == vg]
    if not match:
        known = ", ".join(sorted(v.name for v in vgs)) or "none"  # as vgs sorts them
        raise NotFound(f"volume group {vg!r} does not exist on {host} (VGs there: {known})")
    return match[0]
