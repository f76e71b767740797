"""Where lv-backup-restore reads a backup, chosen once: a BorgBackup repository (borg on the
target extracts each disk) or a place's folder (today's format, decompressed on the place).
One face for both, so the runbook's cells call one thing (as :mod:`.lv_backup_target` for
lv-backup and :class:`.lv_backup_verify.Proof` for lv-backup-verify)."""

from __future__ import annotations

from dataclasses import dataclass

from kvmops.facts import place as place_facts
from kvmops.host import Host
from kvmops.plan import Progress
from kvmops.procedures import lv_backup_restore as rs
from kvmops.procedures.lv_backup_engine import repo_for
from kvmops.procedures.stages import Ran, Staged
from kvmops.transfer.engine import Repo
from kvmops.transfer.place import Backup, Place, PlaceFacts, parse_place


@dataclass
class RestoreSource:
    """A repository (``repo``) or a place's folder (``where``, on ``at``) holding the backups
    restored on ``host``."""

    host: Host
    repo: Repo | None
    where: Place | None = None
    at: Host | None = None
    read: PlaceFacts | None = None  # the repository as read first: a restore never writes it, so it is read once

    @classmethod
    def open(cls, host: Host, repository: str, place: str) -> RestoreSource:
        """``repository`` when given, else the site's; neither: ``place`` (its host opened)."""
        repo = repo_for(host.site, repository)
        if repo is not None:
            return cls(host, repo)
        where = parse_place(place)
        return cls(host, None, where, place_facts.place_host(where, host.site, apply=host.apply))

    def __str__(self) -> str:
        return str(self.repo) if self.repo is not None else str(self.where)

    def read_ctx(self, guest: str, new_name: str = "", stamp: str = "") -> rs.Ctx:
        if self.repo is not None:
            c = rs.read_repo_ctx(self.host, self.repo, guest, new_name, stamp, self.read)
            self.read = c.place
            return c
        return rs.read_ctx(self.host, self._where, self._at, guest, new_name, stamp)

    def run(self, staged: Staged[rs.Ctx], backup: Backup, new_name: str, *confirm: str,
            progress: Progress | None = None) -> Ran:
        """Run the restore (apply) or walk its plan; confirmations are checked before the first change."""
        if self.repo is not None:
            return rs.run_from_repo(self.host, self.repo, staged, backup, new_name, *confirm, progress=progress,
                                    place=self.read)
        return rs.run(self.host, self._where, self._at, staged, backup, new_name, *confirm, progress=progress)

    def close(self) -> None:
        if self.at is not None:
            self.at.close()

    @property
    def _where(self) -> Place:
        assert self.where is not None
        return self.where

    @property
    def _at(self) -> Host:
        assert self.at is not None
        return self.at
