"""`kvmops demo`: plan mode on the demo site where the lab cannot run, saying why."""

from __future__ import annotations

import os

import pytest

from kvmops.cli.main import main
from kvmops_lab import demo


def test_plan_mode_demo_creates_a_guest_plan(capsys: pytest.CaptureFixture[str], tmp_path: object,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KVMOPS_JOURNAL", str(tmp_path))
    assert main(["demo", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "PLAN MODE against the demo site" in out and "--plan was given" in out
    assert "lvcreate --name vmtest2 --size 10g --wipesignatures y --yes rl_build" in out
    assert "runbook guest-create: ok (plan only)" in out


def test_lab_is_not_possible_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    possible, why = demo.lab_possible()
    assert not possible and "not root" in why


def test_lab_is_not_possible_without_qemu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(demo.shutil, "which", lambda tool: None if tool == "qemu-system-x86_64" else "/bin/x")
    possible, why = demo.lab_possible()
    assert not possible and "qemu-system-x86_64" in why
