"""The manual's benchmarks page shows bench/lab_nested_boot.py's results (issue 23)."""

from __future__ import annotations

import json
from pathlib import Path

from kvmops_manual import benchmarks


def _setting(title: str, seconds: list[float | None], deaths: int) -> dict[str, object]:
    boots = [{"booted": s is not None, "seconds": s or 300.0, "stage": "login prompt" if s else "kernel",
              "loadavg_1m": 2.5 + i / 10} for i, s in enumerate(seconds)]
    ok = sorted(s for s in seconds if s is not None)
    return {"title": title, "busy_cores": 1, "boots": boots, "lab_deaths": [{"round": 0}] * deaths,
            "summary": {"boots": len(seconds), "booted": len(ok), "stalled": len(seconds) - len(ok),
                        "lab_deaths": deaths, "min_s": ok[0] if ok else None,
                        "median_s": ok[len(ok) // 2] if ok else None, "max_s": ok[-1] if ok else None}}


def test_one_row_per_setting_and_the_goal(tmp_path: Path) -> None:
    doc = {"bench": "lab_nested_boot", "measured": "2026-12-06T10:00:00Z", "machine": {"hostname": "b1"},
           "settings": {"a": _setting("nested KVM, lab -cpu max", [40.0, None, 44.0], 1),
                        "b": _setting("TCG inside the lab", [180.0, 190.0], 0)}}
    (tmp_path / "lab_nested_boot-results.json").write_text(json.dumps(doc))
    page = benchmarks.page(tmp_path)
    assert ("| Small guest inside the lab: nested KVM, lab -cpu max | every boot to its login prompt, the lab never "
            "panics | 2 of 3 booted (min / median / max 40 / 44 / 44 s); 1 stalled, 1 lab panics; 1 core(s) kept "
            "busy, load 2.5-2.7 | **no** |") in page
    assert "| Small guest inside the lab: TCG inside the lab |" in page
    assert "2 of 2 booted (min / median / max 180 / 190 / 190 s); 0 stalled, 0 lab panics" in page
    assert "load 2.5-2.6 | yes |" in page


def test_lab_down_rows(tmp_path: Path) -> None:
    doc = {"bench": "lab_down", "measured": "2026-12-06T10:00:00Z", "machine": {"hostname": "b1"}, "results": [
        {"case": "poweroff, guest running (before)", "seconds": 240.2, "outcome": "still running after 240 s: killed"},
        {"case": "lab down, guest running", "seconds": 12.4, "outcome": "lab VM powered off"},
        {"case": "lab down, no guest", "seconds": 31.0, "outcome": "lab VM powered off"}]}
    (tmp_path / "lab_down-results.json").write_text(json.dumps(doc))
    page = benchmarks.page(tmp_path)
    assert "| Lab power-off: poweroff, guest running (before) | within 30 s | 240 s (still running after 240 s: " \
           "killed) | - |" in page
    assert "| Lab power-off: lab down, guest running | within 30 s | 12 s (lab VM powered off) | yes |" in page
    assert "| Lab power-off: lab down, no guest | within 30 s | 31 s (lab VM powered off) | **no** |" in page
