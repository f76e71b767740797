"""lv-backup-restore's face: the backups are read from a BorgBackup repository when one is named
(the runbook's ``repository``, else the site's), else from a place's folder (today's format)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kvmops.errors import InvalidInput
from kvmops.host import connect
from kvmops.procedures import lv_backup_restore as rs
from kvmops.procedures.lv_backup_source import RestoreSource
from tests.unit.test_lv_backup import CHECKED, DEMO, PLACE


def test_a_repository_is_the_source_when_named_else_the_place() -> None:
    host = connect(replace(DEMO, backup_passphrase_file="/root/.config/kvmops/borg-pass"))
    try:
        src = RestoreSource.open(host, "/srv/kvmops-borg", str(PLACE))
        assert src.repo is not None and (src.repo.url, src.repo.passphrase_file) == \
            ("/srv/kvmops-borg", "/root/.config/kvmops/borg-pass")
        assert src.where is None and src.at is None and str(src) == "/srv/kvmops-borg"
        src.close()
        old = RestoreSource.open(host, "", "demo2:/srv/kvmops-backups")
        try:
            assert old.repo is None and old.where == PLACE and old.at is not None
            c = old.read_ctx("influx", "influx-old")
            assert c.repo is None and [b.stamp for b in c.place.complete("influx")] == \
                [b.stamp for b in CHECKED.complete("influx")]
        finally:
            old.close()
    finally:
        host.close()


def test_a_repository_without_its_passphrase_file_is_refused_by_name() -> None:
    host = connect(DEMO)
    try:
        with pytest.raises(InvalidInput, match=r"passphrase_file"):
            RestoreSource.open(host, "/srv/kvmops-borg", "")
    finally:
        host.close()



def test_a_restore_from_a_repository_reads_it_once() -> None:
    """The face keeps the repository as read for the plan, and the run plans from it: the demo's
    recording answers no ``borg list``, so a second read would fail (a restore never writes the
    repository; on a slow host each read costs two borg runs per backup)."""
    from kvmops.facts.engine import read_repo
    from kvmops.transfer import engine as en
    from kvmops.transfer.place import PlaceFacts
    from tests.unit.test_backup_engine import REPO, _engine_backup

    b, _ = _engine_backup()
    host = connect(replace(DEMO, backup_passphrase_file=REPO.passphrase_file))
    try:
        with pytest.raises(Exception, match="borg list"):
            read_repo(REPO, host, "web1")
        src = RestoreSource(host, REPO, read=PlaceFacts(en.place_of(REPO, "demo"), True, (b,)))
        c = src.read_ctx("web1", "web1-copy")
        assert c.repo == REPO and c.place is src.read
        staged = rs.procedure(c, b, new_name="web1-copy")
        ran = src.run(staged, b, "web1-copy")
        assert any("extract dev/vg_guests/vmweb1-snap" in line for line in ran.lines), ran.lines
        assert src.read_ctx("web1", "web1-copy", b.stamp).place is src.read
    finally:
        host.close()
