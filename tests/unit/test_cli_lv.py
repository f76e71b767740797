"""``kvmops lv`` on the demo site: its help, a bad ``--interval`` refused by the CLI and by
the operation it calls, a bad ``--threshold`` refused."""

from __future__ import annotations

import contextlib
import io

import pytest

from kvmops.cli.lv import interval
from kvmops.cli.main import main
from kvmops.errors import InvalidInput
from kvmops.facts import read_facts
from kvmops.host import connect
from kvmops.lvm import ops
from kvmops.site import load_site, resolve_site

SNAP = "vminflux-20261120T0900Z"


def kvmops(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([*argv, "--site", "demo"])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_lv_help_prints_its_commands() -> None:
    code, out, err = kvmops("lv", "--help")
    assert code == 0 and "incomplete format" not in err
    assert "snapshots" in out and "every guest snapshot with how full it is (percent)" in out


@pytest.mark.parametrize(("value", "message"), [
    ("0", "0: give whole seconds from 1 to 3600"), ("-5", "-5: give whole seconds from 1 to 3600"),
    ("3601", "3601: give whole seconds from 1 to 3600"), ("1.5", "'1.5' is not a whole number of seconds"),
    ("x", "'x' is not a whole number of seconds"),
])
def test_merge_with_a_bad_interval_is_refused_before_anything_is_read(value: str, message: str) -> None:
    code, out, err = kvmops("lv", "merge", SNAP, f"--interval={value}")
    assert code == 2 and f"argument --interval: {message}" in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize("value", ["0", "-5", "100.5", "nan", "inf", "x"])
def test_extend_with_a_bad_threshold_is_refused(value: str) -> None:
    code, out, err = kvmops("lv", "extend", f"--threshold={value}")
    assert code == 2 and "argument --threshold:" in err and out == ""


@pytest.mark.parametrize(("value", "grown"), [("0.5", 2), ("80", 1), ("100", 0)])
def test_extend_plans_for_a_good_threshold(value: str, grown: int) -> None:
    code, out, _ = kvmops("lv", "extend", "--threshold", value)
    assert code == 0 and out.count("lvresize --size 7g") == grown


def test_merge_interval_bounds_are_those_of_the_operation() -> None:
    host = connect(load_site(resolve_site("demo")))
    try:
        facts = read_facts(host)
    finally:
        host.close()
    for good in (1, 3600):
        assert interval(str(good)) == good
        assert list(ops.merge(facts, SNAP, interval=good).targets) == [f"rl_build/{SNAP}"]
    for bad in (0, 3601, -1):
        with pytest.raises(InvalidInput, match="give whole seconds from 1 to 3600"):
            ops.merge(facts, SNAP, interval=bad)


def test_merge_plans_with_a_good_interval() -> None:
    code, out, _ = kvmops("lv", "merge", SNAP, "--interval", "5")
    assert code == 0 and f"lvconvert --mergesnapshot rl_build/{SNAP} --interval 5" in out


def test_list_and_snapshots_read_the_facts() -> None:
    code, out, _ = kvmops("lv", "list")
    assert code == 0 and "rl_build/vmold" in out and "592.00 GiB free of 892.00 GiB" in out
    assert "rl_build/root" not in out  # host LVs are never listed
    code, out, _ = kvmops("lv", "snapshots")
    assert code == 0 and "84.37" in out and "rl_build/vmold" not in out
