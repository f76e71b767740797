"""LVM as data for the guest procedures' unit tests (no root, no device-mapper here).

:class:`SimLvm` answers ``vgs``/``lvs`` from the captured reports (tests/fixtures/lvm) and
changes its LVs for ``lvcreate``/``lvrename``/``lvremove`` as LVM would; ``qemu-img
convert``/``compare`` onto an LV only succeed (an LV has no device node without
device-mapper); every other command (the kept XML, the seed ISO, ``blkid``, ``qemu-img
info``) runs for real on this machine. What ran is kept in :attr:`SimLvm.changes`. The real
LVM and libvirt paths are the integration and lab tiers'.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kvmops.cmd import Cmd, Result
from kvmops.runners import LocalRunner
from kvmops.runners.base import LineSink, Runner
from kvmops.units import parse_size

LVM_FIX = Path(__file__).parent.parent / "fixtures" / "lvm"


class SimLvm(Runner):
    def __init__(self, lvs: str = "lab-snapshot", vgs: str = "guide-host") -> None:
        super().__init__()
        self.host = "testhost"
        report = json.loads((LVM_FIX / f"{lvs}.lvs.out").read_text())
        self.lvs: list[dict[str, Any]] = report["report"][0]["lv"]
        self.vgs = (LVM_FIX / f"{vgs}.vgs.out").read_text()
        self.changes: list[tuple[str, ...]] = []
        self.local = LocalRunner("testhost")

    def stream_argv(self, cmd: Cmd) -> list[str]:
        return self.local.stream_argv(cmd)  # a run's locks: held on this machine

    def names(self) -> list[str]:
        return [lv["lv_name"] for lv in self.lvs]

    def add(self, name: str, size: int = 1 << 30) -> None:
        self.lvs.append({"lv_name": name, "vg_name": "rl_build", "lv_attr": "-wi-a-----", "lv_size": str(size),
                         "origin": "", "data_percent": "", "lv_time": "2026-11-30 08:00:00 +0000"})

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        argv = cmd.argv
        if argv[0] == "vgs":
            return self._ok(cmd, self.vgs)
        if argv[0] == "lvs":
            return self._ok(cmd, json.dumps({"report": [{"lv": self.lvs}]}))
        if argv[0] in ("lvcreate", "lvrename", "lvremove") or argv[:2] in (("qemu-img", "convert"),
                                                                          ("qemu-img", "compare")):
            self.changes.append(argv)
            self._lvm(argv)
            return self._ok(cmd, "")
        return self.local._execute(cmd, on_line)

    def _lvm(self, argv: tuple[str, ...]) -> None:
        if argv[0] == "lvcreate":
            self.add(argv[argv.index("--name") + 1], parse_size(argv[argv.index("--size") + 1]))
        elif argv[0] == "lvrename":
            old, new = argv[2], argv[3]
            for lv in self.lvs:
                if lv["lv_name"] == old:
                    lv["lv_name"] = new
                if lv["origin"] == old:
                    lv["origin"] = new
        elif argv[0] == "lvremove":
            gone = argv[1].split("/", 1)[1]
            self.lvs = [lv for lv in self.lvs if lv["lv_name"] != gone]

    def _ok(self, cmd: Cmd, out: str) -> Result:
        return Result(cmd, self.host, 0, out, "", 0.0)


# -- the simulation itself -------------------------------------------------------------------


def test_lvm_changes_are_seen_by_the_next_report() -> None:
    from kvmops.facts.lvm import read_state
    from kvmops.lvm import commands as c

    sim = SimLvm()
    sim.run(c.lvcreate("rl_build", "vmweb2", 12 << 30))
    sim.run(c.lvrename("rl_build", "vmtest2", "vmdb2"))
    sim.run(c.lvremove("rl_build", "vmtest1"))
    state = read_state(sim, "rl_build")
    assert {lv.name: lv.size for lv in state.lvs} == {"vmweb2": 12 << 30, "vmdb2": 268435456,
                                                      "vmtest2_snap": 134217728}
    assert state.snapshots_of("vmdb2")[0].name == "vmtest2_snap"
    assert [a[0] for a in sim.changes] == ["lvcreate", "lvrename", "lvremove"]
