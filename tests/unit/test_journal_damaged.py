"""A damaged journal record is left out by every reader (the CLI says which), never a crash."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

from kvmops.cli.main import main
from kvmops.runbook.journal import RECORD, list_records

FIXTURE = Path(__file__).parents[1] / "fixtures" / "journal" / "verify-newest-ok.record.json"
DAMAGED = {"not-json": "{\"id\": ", "a-list": "[1, 2]", "wrong-type": "{\"id\": 7}", "empty": ""}


def _journal(tmp_path: Path) -> Path:
    journal = tmp_path / "journal"
    (journal / "20261201T020000Z-lv-backup-verify").mkdir(parents=True)
    shutil.copy(FIXTURE, journal / "20261201T020000Z-lv-backup-verify" / RECORD)
    for name, text in DAMAGED.items():
        (journal / f"20261202T020000Z-{name}").mkdir()
        (journal / f"20261202T020000Z-{name}" / RECORD).write_text(text)
    return journal


def test_damaged_records_are_left_out_and_named(tmp_path: Path) -> None:
    damaged: list[Path] = []
    (rec,) = list_records(_journal(tmp_path), damaged)
    assert rec.runbook == "lv-backup-verify"
    assert sorted(p.parent.name for p in damaged) == sorted(f"20261202T020000Z-{n}" for n in DAMAGED)


def test_kvmops_journal_lists_the_good_runs_and_says_which_records_it_left_out(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["journal", "--journal", str(_journal(tmp_path))])
    assert code == 0 and "lv-backup-verify" in out.getvalue()
    assert err.getvalue().count("holds no readable record") == len(DAMAGED)
    assert "Traceback" not in err.getvalue()
