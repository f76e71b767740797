"""The benchmarks page: results files in, a table with goals, measured values and machine out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvmops.errors import ConfigError
from kvmops_manual import benchmarks

MACHINE = {"hostname": "bench1", "cpu_model": "Test CPU @ 2.0GHz", "cores": 2, "python": "3.11.7"}


def write(folder: Path, name: str, **data: object) -> None:
    (folder / f"{name}-results.json").write_text(json.dumps({"bench": name, "measured": "2026-11-25T22:00:00+00:00",
                                                             "machine": MACHINE, **data}))


def copy_rows(ours_dense: float, dd_dense: float, ours_sparse: float, dd_sparse: float) -> list[dict[str, object]]:
    return [{"image": img, "method": m, "seconds": [1.0], "best_mib_s": v} for img, m, v in (
        ("dense", benchmarks.KVMOPS_COPY, ours_dense), ("dense", benchmarks.DD_COPY, dd_dense),
        ("sparse 90% holes", benchmarks.KVMOPS_COPY, ours_sparse), ("sparse 90% holes", benchmarks.DD_COPY, dd_sparse))]


def rows(markdown: str) -> dict[str, list[str]]:
    out = {}
    for line in markdown.split("\n\n")[0].splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        out[cells[0]] = cells[1:]
    return out


def test_goals_are_judged_from_the_numbers_and_the_machine_is_named(tmp_path: Path) -> None:
    write(tmp_path, "runbook_overhead", kvmops_median_s=3.3, bare_median_s=3.0, overhead_pct=10.0)
    write(tmp_path, "inventory_scale", lvs=500, guests=200, commands=3, command_names=["vgs", "lvs", "virsh"],
          parse_ms=61.2)
    write(tmp_path, "image_copy", size_mib=512, results=copy_rows(900, 800, 2000, 1000))
    page = benchmarks.page(tmp_path)
    got = rows(page)
    assert got["Runbook run overhead"][2] == "yes" and "+10 %" in got["Runbook run overhead"][1]
    inv = got["Inventory, 500 LVs / 200 guests"]
    assert inv[2] == "**no**" and "parse 61.2 ms" in inv[1]  # 61 ms misses the 50 ms goal
    assert got["Image copy, dense (512 MiB)"][2] == "yes"
    assert got["Image copy, sparse 90% holes (512 MiB)"][1].endswith("(2.0x)")
    assert got["Image copy, sparse 90% holes (512 MiB)"][2] == "**no**"  # 2x is not 3x
    assert all(r[3] == "bench1: Test CPU @ 2.0GHz, 2 cores, Python 3.11.7" for r in
               (got["Runbook run overhead"], inv))
    assert got["Manual build"][1].startswith("not measured")
    assert got["Guest creation in the lab, without the image copy"][1] == "not measured (no script yet)"
    assert "**Image copy in detail**" in page and "(kvmops)" in page


def test_a_damaged_results_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "inventory_scale-results.json").write_text("{not json")
    with pytest.raises(ConfigError, match="inventory_scale-results.json: not a results file"):
        benchmarks.page(tmp_path)


def test_the_repositorys_results_render(tmp_path: Path) -> None:
    page = benchmarks.page(Path(__file__).resolve().parents[2] / "bench")
    assert "Runbook run overhead" in page and "| Goal met |" in page


def test_terminal_latency_is_judged_by_the_slowest_command_of_each_kind(tmp_path: Path) -> None:
    def row(kind: str, wall: float, cpu: float | None = 0.1) -> dict[str, object]:
        return {"kind": kind, "median_wall_s": wall, "median_cpu_s": cpu}

    write(tmp_path, "cli_latency", rounds=5, goals_s={"list": 0.3, "cli_plan": 0.5, "runbook_plan": 2.0},
          loadavg_before=[0.4, 0.5, 0.5], loadavg_after=[0.6, 0.5, 0.5], results={
              "python -c pass": row("baseline", 0.02), "papermill empty.ipynb (the command)": row("baseline", 1.9),
              "papermill.execute_notebook(empty) (kernel only)": row("execute", 0.6, None),
              "kvmops lv list --site demo": row("list", 0.21), "kvmops net list --site demo": row("list", 0.28),
              "kvmops lv snapshot vminflux --site demo": row("cli_plan", 0.62),
              "kvmops plan lv-snapshot": row("runbook_plan", 1.4),
              "kvmops plan guest-create": row("runbook_plan", 1.7)})
    page = benchmarks.page(tmp_path)
    got = rows(page)
    lists = got["`kvmops {lv,guest,net} list --site demo`"]
    assert lists[2] == "yes" and lists[1].startswith("0.28 s (slowest: `kvmops net list --site demo`")
    assert got["A CLI plan (`kvmops lv snapshot vminflux --site demo`)"][2] == "**no**"  # 0.62 s > 0.5 s
    plans = got["`kvmops plan RUNBOOK --site demo`, every runbook"]
    assert plans[2] == "yes" and "`kvmops plan guest-create`" in plans[1] and "bare papermill" in plans[1]
    assert "**At the terminal in detail**" in page
    assert "| `kvmops plan lv-snapshot` | runbook plan | 1.40 | 0.10 |" in page
