"""lv-backup-restore's face: the backups are read from a BorgBackup repository when one is named
(the runbook's ``repository``, else the site's), else from a place's folder (today's format)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kvmops.errors import InvalidInput
from kvmops.host import connect
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

