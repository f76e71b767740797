"""Where backups are, chosen once per run: a BorgBackup repository, else a place's folder (today's
format). The base of the runbooks' faces: lv-backup's :class:`.lv_backup_target.BackupTarget`,
lv-backup-restore's :class:`.lv_backup_source.RestoreSource` and lv-backup-verify's
:class:`.lv_backup_verify.Proof`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from kvmops.facts import place as place_facts
from kvmops.host import Host
from kvmops.procedures.lv_backup_engine import repo_for
from kvmops.transfer.engine import Repo
from kvmops.transfer.place import Place, PlaceFacts, parse_place


@dataclass
class BackupStore:
    """A repository (``repo``) or a place's folder (``where``, on the host ``at``) for ``host``."""

    host: Host
    repo: Repo | None
    where: Place | None = None
    at: Host | None = None
    read: PlaceFacts | None = None  # the repository as read for the plan: the run plans from it, not read again

    @classmethod
    def open(cls, host: Host, repository: str, place: str) -> Self:
        """``repository`` when given, else the site's; neither: ``place`` (its host opened)."""
        repo = repo_for(host.site, repository)
        if repo is not None:
            return cls(host, repo)
        where = parse_place(place)
        return cls(host, None, where, place_facts.place_host(where, host.site, apply=host.apply))

    def __str__(self) -> str:
        return str(self.repo) if self.repo is not None else str(self.where)

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
