"""`kvmops demo`: plan mode on the demo site where the lab cannot run, saying why."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kvmops.cli.main import main
from kvmops.runbook.journal import RunRecord
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


def _rec(status: str, error: str | None, tmp_path: Path, outputs: str = "") -> RunRecord:
    nb = tmp_path / "run.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": [{"name": "stdout", "text": outputs}]}]}))
    return RunRecord(id="r1", runbook="guest-create", status=status, params={}, user="u", site="lab", host="h",
                     apply=True, started="t", notebook=str(nb), error=error)


def test_the_demo_says_booted_only_on_the_runbooks_login_prompt(tmp_path: Path) -> None:
    ok = _rec("ok", None, tmp_path, "x\n    guest demo1 booted: login prompt after 41 s ('kvmops-guest login:')\n")
    assert demo.boot_summary("demo1", ok) == ("guest demo1 BOOTED in the lab: guest demo1 booted: login prompt after "
                                              "41 s ('kvmops-guest login:')")


def test_the_demo_says_plainly_when_the_boot_was_not_verified(tmp_path: Path) -> None:
    """What the demo once called 'ok' (the loaded machine's 180 s: boot loader and kernel lines)."""
    line = ("step 3 failed (wait up to 180 s for a login prompt on its serial console): guest demo1: boot NOT "
            "verified in 180 s: NOT verified: no login prompt within 180 s; the console got as far as kernel; "
            "this may be because the kernel started but did not reach its init")
    failed = _rec("failed", line, tmp_path, "SYSLINUX 6.04\nLoading /boot/initrd.img...ok\n" + line + "\n")
    said = demo.boot_summary("demo1", failed)
    assert said.startswith("guest demo1 was started, but its boot was NOT verified: boot NOT verified in 180 s")
    assert "BOOTED" not in said
    early = demo.boot_summary("demo1", _rec("failed", "lvcreate failed", tmp_path))
    assert "boot NOT verified" in early and "BOOTED" not in early
