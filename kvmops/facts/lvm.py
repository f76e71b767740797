"""The site's volume group and its LVs, read through the host's runner (``vgs``, ``lvs``)."""

from __future__ import annotations

from kvmops.errors import NotFound
from kvmops.lvm.facts import lvs_cmd, parse_lvs, parse_vgs, vgs_cmd
from kvmops.lvm.state import ACTIVATION_DISABLED, LvmState
from kvmops.runners.base import Runner


def read_state(runner: Runner, vg: str) -> LvmState:
    """Run ``vgs VG`` and ``lvs VG`` (read-only, also in plan mode) and parse them."""
    vgs = parse_vgs(runner.run(vgs_cmd(), check=True).stdout)
    match = [v for v in vgs if v.name == vg]
    if not match:
        known = ", ".join(v.name for v in vgs) or "none"
        raise NotFound(f"volume group {vg!r} does not exist on {runner.host} (VGs there: {known})")
    report = runner.run(lvs_cmd(vg))
    return LvmState(match[0], parse_lvs(report.stdout), ACTIVATION_DISABLED in report.stderr)
