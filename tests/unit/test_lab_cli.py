"""``kvmops lab`` without a running lab: clear messages and exit codes, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops.cli.main import main


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KVMOPS_CACHE", str(tmp_path))
    return tmp_path


def test_status_of_no_lab(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "status"]) == 3
    assert "stopped" in capsys.readouterr().out


def test_site_and_ssh_need_a_running_lab(capsys: pytest.CaptureFixture[str], cache: Path) -> None:
    assert main(["lab", "site"]) == 2
    err = capsys.readouterr().err
    assert str(cache / "lab" / "run" / "site.toml") in err and "kvmops lab up" in err
    assert main(["lab", "ssh", "--", "true"]) == 2
    assert "kvmops lab up" in capsys.readouterr().err


def test_destroy_is_always_safe(capsys: pytest.CaptureFixture[str], cache: Path) -> None:
    run = cache / "lab" / "run"
    run.mkdir(parents=True)
    (run / "state.json").write_text("{broken")
    assert main(["lab", "destroy"]) == 0
    assert not run.exists()
    assert main(["lab", "destroy"]) == 0
    assert "nothing to clean" in capsys.readouterr().out


def test_down_without_a_lab(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "down"]) == 0
    assert "nothing to power off" in capsys.readouterr().out
