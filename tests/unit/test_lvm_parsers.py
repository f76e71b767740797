"""LVM parsers against real captured output: one case per fixture file pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvmops.lvm.facts import ReportError, parse_lvs, parse_vgs
from kvmops.lvm.merge import parse_merge_line

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lvm"
CASES = sorted(FIXTURES.glob("*.out"))


def _expected(out: Path) -> dict:
    return json.loads(out.with_name(out.name.removesuffix(".out") + ".expected.json").read_text())


def test_every_fixture_has_an_expectation() -> None:
    assert len(CASES) >= 8
    for case in CASES:
        assert _expected(case)["source"]


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_parser_case(case: Path) -> None:
    text = case.read_text()
    want = _expected(case)
    kind = case.name.split(".")[-2]
    if kind == "lvs":
        got = [
            {
                "name": lv.name, "vg": lv.vg, "size": lv.size, "origin": lv.origin,
                "data_percent": lv.data_percent, "is_snapshot": lv.is_snapshot,
                "is_origin": lv.is_origin, "active": lv.active, "open": lv.open, "hidden": lv.hidden,
            }
            for lv in parse_lvs(text)
        ]
        assert got == want["lvs"]
    elif kind == "vgs":
        got = [vars(vg) for vg in parse_vgs(text)]
        assert got == want["vgs"]
    else:
        lines = []
        for line in text.splitlines():
            m = parse_merge_line(line)
            lines.append(None if m is None else [m.origin, m.percent, m.delayed])
        assert lines == want["lines"]


def test_hidden_lv_during_merge_is_unbracketed() -> None:
    text = json.dumps({"report": [{"lv": [
        {"lv_name": "vmtest3", "vg_name": "rl_build", "lv_attr": "Owi-aos---", "lv_size": "1048576",
         "origin": "", "data_percent": "", "lv_time": ""},
        {"lv_name": "[vmtest3_snap]", "vg_name": "rl_build", "lv_attr": "Swi-a-s---",
         "lv_size": "1048576", "origin": "vmtest3", "data_percent": "12.50", "lv_time": ""},
    ]}]})
    origin, snap = parse_lvs(text)
    assert origin.merging and origin.open and origin.is_origin
    assert snap.name == "vmtest3_snap" and snap.hidden and snap.merging and snap.is_snapshot


def test_overflowed_snapshot_is_invalid() -> None:
    text = json.dumps({"report": [{"lv": [
        {"lv_name": "vmx-20240101T0000Z", "vg_name": "rl_build", "lv_attr": "swi-I-s---",
         "lv_size": "1048576", "origin": "vmx", "data_percent": "100.00", "lv_time": ""},
    ]}]})
    (snap,) = parse_lvs(text)
    assert snap.invalid


@pytest.mark.parametrize("text", ["", "Volume group \"x\" not found", '{"report": 3}'])
def test_not_a_report(text: str) -> None:
    with pytest.raises(ReportError, match="not an LVM JSON report"):
        parse_lvs(text)
