"""Each guest's last verified restore on the manual's host, guest and fleet pages, from real
lv-backup-verify records (tests/fixtures/journal) read as an applied run's would be; damaged
records are left out of the build."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest

from kvmops.procedures import lv_backup_restore as rs
from kvmops.procedures import lv_backup_verify as vf
from kvmops.procedures.base import Verdict
from kvmops.runbook.journal import RunRecord
from kvmops.runbook.verdict_data import MIME, keep_verdict, stamp_in, summary
from kvmops_manual import hosts, restores
from kvmops_manual.hooks import proven_stamps
from kvmops_manual.journal import newest_first, readable_records
from tests.unit.test_docs_hosts import demo  # noqa: F401 (the fixture: the demo site's inventory data)
from tests.unit.test_lv_backup import CHECKED

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "journal"
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)  # the build's time


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.record.json").read_text())
    return data


def _put(journal: Path, run_id: str, data: object) -> None:
    folder = journal / run_id
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(data if isinstance(data, str) else json.dumps(data))


def _run(journal: Path, name: str, started: str, *, apply: bool = True, **changes: Any) -> RunRecord:
    """A fixture's record as an applied run started at ``started`` (read back as the build does)."""
    data = {**_fixture(name), "apply": apply, "started": started, "id": f"{started[:19]}-{name}", **changes}
    _put(journal, data["id"], data)
    return next(r for r in readable_records(journal) if r.id == data["id"])


def _newest(stamps: dict[str, str], *runs: RunRecord) -> restores.Proof:
    [last] = restores.last_restores(runs, stamps).values()
    assert last.newest is not None
    return last.newest


def test_a_plan_mode_run_proves_nothing(tmp_path: Path) -> None:
    rec = _run(tmp_path, "verify-newest-ok", "2026-12-06T11:12:28+00:00", apply=False)
    assert rec.ok and restores.proof_of(rec) is None
    assert restores.last_restores([rec]) == {}


def test_an_applied_run_is_the_guests_proof(tmp_path: Path) -> None:
    newest = _run(tmp_path, "verify-newest-ok", "2026-12-07T02:00:00+00:00")
    chosen = _run(tmp_path, "verify-chosen-ok", "2026-12-06T02:00:00+00:00")
    assert restores.proof_of(chosen) == restores.Proof("influx", "demo", chosen.id,
                                                       datetime(2026, 12, 6, 2, tzinfo=UTC), True, "20261128T020000Z")
    assert _newest({newest.id: "20261129T020000Z"}, newest).stamp == "20261129T020000Z"  # kept by its notebook
    found = restores.last_restores([chosen, newest])
    assert list(found) == ["influx"] and _newest({}, chosen, newest).run_id == newest.id
    assert _newest({}, chosen, newest).stamp == ""  # the newest backup of the time: not recorded
    assert found["influx"].state(NOW) == "ok"
    assert restores.cell(found["influx"], NOW) == "ok 3 days ago"
    assert restores.cell(restores.last_restores([chosen])["influx"], NOW) == \
        "ok 4 days ago, backup `20261128T020000Z`"


def test_a_failed_proof_names_why_and_the_last_passing_one(tmp_path: Path) -> None:
    ok = _run(tmp_path, "verify-chosen-ok", "2026-11-20T02:00:00+00:00")
    failed = _run(tmp_path, "verify-no-backup-failed", "2026-12-09T02:00:00+00:00")
    influx_failed = _run(tmp_path, "verify-no-backup-failed", "2026-12-09T03:00:00+00:00",
                         params={**failed.params, "guest": "influx"})
    found = restores.last_restores([ok, failed, influx_failed])
    test1 = found["test1"]
    assert test1.state(NOW) == "failed" and test1.last_ok is None
    assert _newest({}, failed).why == ("at Check the backup and the host; "
                                       "NotFound: no complete backup of test1 at demo2:/srv/kvmops-backups")
    assert restores.cell(test1, NOW) == "**failed** 1 day ago; never ok"
    assert found["influx"].last_ok == restores.proof_of(ok)
    assert restores.cell(found["influx"], NOW) == "**failed** 1 day ago; last ok 20 days ago"
    section = restores.guest_section(found["influx"], NOW)
    assert section.startswith('!!! failure "The newest verification of influx failed"')
    assert "| Last passing | 20 days ago (run `2026-11-20T02:00:00-verify-chosen-ok`) |" in section


def test_never_and_stale_are_flagged(tmp_path: Path) -> None:
    old = _run(tmp_path, "verify-chosen-ok", "2026-12-02T11:59:00+00:00")  # 8 days and a minute
    last = restores.last_restores([old])["influx"]
    assert last.state(NOW) == "stale" and last.flagged(NOW)
    assert last.state(NOW, stale=timedelta(days=9)) == "ok" and not last.flagged(NOW, timedelta(days=9))
    assert restores.cell(last, NOW) == "**stale**: ok 8 days ago, backup `20261128T020000Z`"
    assert restores.guest_section(last, NOW).startswith('!!! warning "Stale: last proven 8 days ago"')
    never = restores.of("web1", {})
    assert never.state(NOW) == "never" and never.flagged(NOW) and restores.cell(never, NOW) == "**never**"
    assert restores.guest_section(never, NOW).startswith('!!! warning "Backups never proven"')


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(seconds=20), "just now"), (timedelta(minutes=1), "1 minute ago"), (timedelta(hours=5), "5 hours ago"),
    (timedelta(days=1, hours=23), "1 day ago"), (timedelta(days=3), "3 days ago"), (-timedelta(hours=2), "just now"),
])
def test_ages_count_from_the_build_time(delta: timedelta, text: str) -> None:
    assert restores.age(NOW - delta, NOW) == text


def test_the_host_and_guest_pages_show_it(tmp_path: Path, demo: dict[str, Any]) -> None:  # noqa: F811 (the fixture)
    inv = hosts.HostInventory(demo, "Inventory run `inv0`.")
    runs = [_run(tmp_path, "verify-chosen-ok", "2026-12-07T02:00:00+00:00")]
    made = hosts.pages({"demo": inv}, runs, NOW)
    host = made["journal/hosts/demo/index.md"]
    assert "| Disks | Last verified restore |" in host
    assert "| `rl_build/vminflux` | ok 3 days ago, backup `20261128T020000Z` |" in host
    assert "| `rl_build/vmtest1` | **never** |" in host
    influx = made["journal/hosts/demo/influx.md"]
    assert "## Last verified restore\n\n| Last verified restore |  |" in influx
    assert "| Verdict | ok: restored and booted to a login prompt |" in influx
    assert "| When | 2026-12-07 02:00 UTC (3 days ago) |" in influx
    assert "| Backup | `20261128T020000Z` |" in influx and "| Restored on | demo |" in influx
    assert '!!! warning "Backups never proven"' in made["journal/hosts/demo/test1.md"]


def test_the_fleet_page_counts_per_host(tmp_path: Path, demo: dict[str, Any]) -> None:  # noqa: F811 (the fixture)
    runs = [_run(tmp_path, "verify-chosen-ok", "2026-12-07T02:00:00+00:00"),
            _run(tmp_path, "verify-no-backup-failed", "2026-12-09T02:00:00+00:00"),
            _run(tmp_path, "verify-chosen-ok", "2026-11-01T02:00:00+00:00", host="kvm2",
                 params={**_fixture("verify-chosen-ok")["params"], "guest": "db9"})]
    guests = hosts.guests_by_host({"demo": hosts.HostInventory(demo, ""), "kvm2": hosts.HostInventory(
        {**demo, "host": "kvm2", "guests": [{**demo["guests"][0], "name": "mail"}]}, "")})
    text = restores.fleet_section(guests, restores.last_restores(runs), NOW)
    assert "| Host | Guests | Never proven | Failed | Stale (> 8 days) | Ok |" in text
    assert "| demo | 2 | - | 1 | - | 1 |" in text and "| kvm2 | 1 | 1 | - | - | 0 |" in text
    assert "| (in no inventory) | 1 | - | - | 1 | 0 |" in text  # db9: verified on kvm2, in no inventory
    assert "| influx | demo | ok 3 days ago, backup `20261128T020000Z` | demo | - |" in text
    assert "| mail | kvm2 | **never** | - | - |" in text
    assert ("| test1 | demo | **failed** 1 day ago; never ok | demo | at Check the backup and the host; "
            "NotFound: no complete backup of test1 at demo2:/srv/kvmops-backups |") in text
    assert "| db9 | (in no inventory) | **stale**: ok 39 days ago, backup `20261128T020000Z` | kvm2 | - |" in text
    assert restores.fleet_section({}, {}, NOW) == "No guests in the journal's inventories and no verified restores."


DAMAGED: list[object] = [
    "{not json", "[]", json.dumps({"id": "x"}),  # not a record, fields missing
    {**_fixture("verify-chosen-ok"), "apply": "yes"}, {**_fixture("verify-chosen-ok"), "params": ["influx"]},
    {**_fixture("verify-chosen-ok"), "started": 20261207}, {**_fixture("verify-chosen-ok"), "surprise": 1},
    {**_fixture("verify-chosen-ok"), "error": {"a": 1}}, {**_fixture("verify-chosen-ok"), "failed_cell": True},
]


def test_damaged_records_are_left_out_of_the_build(tmp_path: Path, demo: dict[str, Any]) -> None:  # noqa: F811 (the fixture)
    good = _run(tmp_path, "verify-chosen-ok", "2026-12-07T02:00:00+00:00")
    for i, data in enumerate(DAMAGED):
        _put(tmp_path, f"2026-12-08-{i:02d}-damaged", data)
    odd = [_run(tmp_path, "verify-chosen-ok", "not a time"),  # a record of the right shape, odd values
           _run(tmp_path, "verify-chosen-ok", "2026-12-09T02:00:00", params={"guest": 7}),  # no zone; a number
           _run(tmp_path, "verify-chosen-ok", "2026-12-09T03:00:00+00:00", params={"backup": "x"})]  # no guest
    (tmp_path / "2026-12-08-big").mkdir()
    (tmp_path / "2026-12-08-big" / "record.json").write_bytes(b" " * (9 * 1024 * 1024))
    assert {r.id for r in newest_first(tmp_path)} == {good.id, *(o.id for o in odd)}
    assert all(restores.proof_of(r) is None for r in odd)
    made = hosts.pages({"demo": hosts.HostInventory(demo, "")}, newest_first(tmp_path), NOW)
    assert "| Backup | `20261128T020000Z` |" in made["journal/hosts/demo/influx.md"]


def _verdict_notebook(path: Path, text: str) -> None:
    """An executed notebook holding the verdict as the runbook's last cell shows it."""
    data = json.loads(text)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("keep_verdict(host.apply, proof.verdict(chosen, proved.verdict))")
    cell.outputs = [nbformat.v4.new_output("display_data", data={MIME: data, "text/plain": summary(data)})]
    nb.cells = [cell]
    nbformat.write(nb, str(path))


def test_the_notebook_keeps_which_backup_was_proven(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backup = rs.choose(CHECKED, "influx")
    text = vf.verdict_text(backup, "demo", Verdict.of([(True, "booted")]), NOW)
    keep_verdict(False, text)
    keep_verdict(True, text)  # outside a kernel: its line of text
    assert capsys.readouterr().out == f"verdict kept for the manual: backup {backup.stamp} of influx: ok\n"
    _verdict_notebook(tmp_path / "nb.ipynb", text)
    nb = nbformat.read(str(tmp_path / "nb.ipynb"), as_version=4)
    assert stamp_in(nb, "influx") == backup.stamp == "20261128T020000Z" and stamp_in(nb, "test1") == ""
    for damaged in ([], {"cells": 7}, {"cells": [{"outputs": [{"data": {MIME: {"guest": "influx", "stamp": 7}}}]}]},
                    {"cells": [{"outputs": [{"data": {MIME: {"guest": "influx", "stamp": "../x"}}}]}]}):
        assert stamp_in(damaged, "influx") == ""


def test_the_build_reads_the_stamp_of_the_shown_runs_only(tmp_path: Path, demo: dict[str, Any]) -> None:  # noqa: F811 (the fixture)
    runs = {name: _run(tmp_path, "verify-newest-ok", f"2026-12-0{day}T02:00:00+00:00",
                       notebook=str(tmp_path / f"{name}.ipynb")) for day, name in ((7, "newest"), (6, "older"))}
    text = vf.verdict_text(rs.choose(CHECKED, "influx"), "demo", Verdict.of([(True, "booted")]), NOW)
    _verdict_notebook(tmp_path / "newest.ipynb", text)
    _verdict_notebook(tmp_path / "older.ipynb", text)
    records = newest_first(tmp_path)
    assert proven_stamps(records) == {runs["newest"].id: "20261128T020000Z"}
    made = hosts.pages({"demo": hosts.HostInventory(demo, "")}, records, NOW, proven_stamps(records))
    assert "| `rl_build/vminflux` | ok 3 days ago, backup `20261128T020000Z` |" in made["journal/hosts/demo/index.md"]
    for damaged in ("{not json", "[]", '{"cells": 7}', "\udcff"):
        (tmp_path / "newest.ipynb").write_text(damaged, errors="surrogateescape")
        assert not any(proven_stamps(records).values())  # unknown, never a failure
