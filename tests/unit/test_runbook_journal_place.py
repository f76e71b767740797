"""Where the journal is: explicit folder, $KVMOPS_JOURNAL, a checkout's journal/, or the
state folder of an installed kvmops (XDG, /var/lib for root, ~/.local/state otherwise)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops.runbook import journal
from kvmops.runbook.discover import repo_top
from kvmops.runbook.journal import SYSTEM_JOURNAL, installed_journal, is_checkout, journal_dir

HOME = Path("/home/ops")


@pytest.mark.parametrize(("env", "uid", "want"), [
    ({"XDG_STATE_HOME": "/srv/state"}, 1000, Path("/srv/state/kvmops/journal")),
    ({"XDG_STATE_HOME": "/srv/state"}, 0, Path("/srv/state/kvmops/journal")),
    ({}, 0, SYSTEM_JOURNAL),
    ({}, 1000, HOME / ".local/state/kvmops/journal"),
    ({"XDG_STATE_HOME": "relative/state"}, 1000, HOME / ".local/state/kvmops/journal"),  # XDG: ignore relative
])
def test_the_journal_of_an_installed_kvmops(env: dict[str, str], uid: int, want: Path) -> None:
    assert installed_journal(env, uid, HOME) == want


def test_a_checkout_keeps_its_journal_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KVMOPS_JOURNAL", raising=False)
    assert is_checkout(repo_top())
    assert journal_dir() == repo_top() / "journal"


def test_installed_without_a_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KVMOPS_JOURNAL", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(journal, "repo_top", lambda: tmp_path / "site-packages")
    assert not is_checkout(tmp_path / "site-packages")
    assert journal_dir() == tmp_path / "state/kvmops/journal"


def test_explicit_folder_then_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KVMOPS_JOURNAL", str(tmp_path / "env"))
    assert journal_dir() == tmp_path / "env"
    assert journal_dir(tmp_path / "given") == tmp_path / "given"
