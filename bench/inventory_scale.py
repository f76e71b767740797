"""Inventory of a large host: 500 LVs and 200 guests.

Measures how many commands the inventory runs (goal: a constant, not one per guest) and the
time to parse the LVM report and join it with the libvirt listing (goal: under 50 ms).
The guests live in a libvirt test-driver node file; the LVM report is a synthetic report in
the exact JSON shape LVM 2.03 prints. Run: .venv/bin/python bench/inventory_scale.py
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kvmops.cmd import Cmd, Result
from kvmops.facts import read_facts
from kvmops.guests.inventory import build_inventory, inventory_of
from kvmops.guests.spec import guest_spec
from kvmops.guests.xml import render_domain_xml
from kvmops.host import Host
from kvmops.lvm.facts import parse_lvs, parse_vgs
from kvmops.lvm.state import LvmState
from kvmops.runners.base import LineSink, Runner
from kvmops.site import load_site

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import write_results

GUESTS, LVS = 200, 500


class ReportRunner(Runner):
    """Answers ``vgs``/``lvs`` with the synthetic reports and counts every command."""

    host = "bench"

    def __init__(self, vgs: str, lvs: str) -> None:
        super().__init__()
        self.vgs, self.lvs = vgs, lvs

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        out = self.vgs if cmd.argv[0] == "vgs" else self.lvs
        return Result(cmd, self.host, 0, out, "", 0.0)


def lvs_report() -> str:
    rows = [{"lv_name": n, "vg_name": "rl_build", "lv_attr": "-wi-ao----", "lv_size": "107374182400",
             "origin": "", "data_percent": "", "lv_time": "2026-11-25 21:31:19 +0000"} for n in ("root", "home", "opt")]
    for i in range(LVS - 3):
        snap = i >= GUESTS
        rows.append({"lv_name": f"vmg{i % GUESTS}-20261125T{i % 24:02d}00Z" if snap else f"vmg{i}",
                     "vg_name": "rl_build", "lv_attr": "swi-a-s---" if snap else "owi-a-s---",
                     "lv_size": "10737418240", "origin": f"vmg{i % GUESTS}" if snap else "",
                     "data_percent": "12.50" if snap else "", "lv_time": "2026-11-25 21:31:19 +0000"})
    return json.dumps({"report": [{"lv": rows}]}, indent=2)


def vgs_report() -> str:
    return json.dumps({"report": [{"vg": [{"vg_name": "rl_build", "vg_size": "966367641600",
                                           "vg_free": "107374182400", "vg_extent_size": "4194304",
                                           "lv_count": str(LVS)}]}]})


def node_xml(site_path: Path) -> str:
    site = load_site(site_path)
    doms = [render_domain_xml(site, guest_spec(site, f"g{i}", vlans=[2368])) for i in range(GUESTS)]
    body = "\n".join(d.split("?>", 1)[-1] for d in doms)
    return f"<node>\n{body}\n</node>\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        guide = load_site()
        node = Path(tmp) / "node.xml"
        node.write_text(node_xml(Path(guide.path)))
        runner = ReportRunner(vgs_report(), lvs_report())
        host = Host(guide, runner, f"test:///{node}")
        t0 = time.perf_counter()
        inv = inventory_of(read_facts(host))  # the facts read once: one LVM report, one listing
        total = time.perf_counter() - t0
        domains = host.virt.domains()
        parse = []
        for _ in range(20):
            t1 = time.perf_counter()
            lvm_state = parse_lvs(runner.lvs)
            build_inventory(guide, domains, LvmState(parse_vgs(runner.vgs)[0], lvm_state))
            parse.append(time.perf_counter() - t1)
        host.close()
    print(f"machine: {platform.node()} {platform.machine()} Python {sys.version.split()[0]}")
    print(f"guests={len(inv.guests)} lvs={LVS} commands run={len(runner.records)} "
          f"({', '.join(r.command.split()[0] for r in runner.records)})")
    print(f"parse + join (median of 20): {statistics.median(parse) * 1000:.1f} ms (goal < 50 ms)")
    print(f"whole inventory incl. libvirt listing of {GUESTS} test-driver guests: {total * 1000:.0f} ms")
    write_results("inventory_scale", {
        "guests": len(inv.guests), "lvs": LVS, "commands": len(runner.records),
        "command_names": [r.command.split()[0] for r in runner.records],
        "parse_ms": round(statistics.median(parse) * 1000, 2), "parse_runs": len(parse),
        "whole_inventory_ms": round(total * 1000, 1),
        "goal": "a constant number of commands (not one per guest); parse + join < 50 ms",
    })


if __name__ == "__main__":
    main()
