"""Where lv-backup writes, chosen once: a BorgBackup repository (:mod:`.lv_backup_engine`) or a
place's folder (:mod:`.lv_backup`). One face for both, so the runbook's cells call one thing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kvmops.facts import place as place_facts
from kvmops.host import Host
from kvmops.plan import Progress
from kvmops.procedures import lv_backup as folder
from kvmops.procedures import lv_backup_engine as engine
from kvmops.procedures.base import Verdict
from kvmops.procedures.stages import Ran, Staged
from kvmops.transfer.engine import Repo, parse_keep
from kvmops.transfer.place import Place, PlaceFacts, parse_place


@dataclass
class BackupTarget:
    """A repository (``repo``) or a place's folder (``where``, on ``at``) for ``host``'s guests."""

    host: Host
    repo: Repo | None
    where: Place | None = None
    at: Host | None = None
    read: PlaceFacts | None = None  # the repository as read for the plan (the run does not read it again)

    @classmethod
    def open(cls, host: Host, repository: str, place: str) -> BackupTarget:
        """``repository`` when given, else the site's; neither: ``place`` (its host opened)."""
        repo = engine.repo_for(host.site, repository)
        if repo is not None:
            return cls(host, repo)
        where = parse_place(place)
        return cls(host, None, where, place_facts.place_host(where, host.site, apply=host.apply))

    def __str__(self) -> str:
        return str(self.repo) if self.repo is not None else str(self.where)

    def read_ctx(self, guest: str) -> Any:
        if self.repo is not None:
            c = engine.read_ctx(self.host, self.repo, guest)
            self.read = c.place
            return c
        return folder.read_ctx(self.host, self._where, self._at, guest)

    def check(self, ctx: Any, guest: str, restart: bool) -> str:
        return engine.check(ctx, guest, restart) if self.repo is not None else folder.check(ctx, guest, restart)

    def procedure(self, ctx: Any, guest: str, when: datetime, *, keep: int | str, restart: bool,
                  shutdown_timeout: float) -> Staged[Any]:
        """The stages of one backup (``keep``: a number, or borg's ``last=3,daily=7`` for a repository)."""
        if self.repo is not None:
            return engine.procedure(ctx, self.host, guest, when, keep=parse_keep(keep), restart=restart,
                                    shutdown_timeout=shutdown_timeout)
        return folder.procedure(ctx, guest, when, keep=folder.keep_count(keep), restart=restart,
                                shutdown_timeout=shutdown_timeout)

    def run(self, staged: Staged[Any], guest: str, *confirm: str, progress: Progress | None = None) -> Ran:
        if self.repo is not None:
            return engine.run(self.host, self.repo, staged, guest, *confirm, progress=progress, place=self.read)
        return folder.run(self.host, self._where, self._at, staged, guest, *confirm, progress=progress)

    def verify(self, guest: str, when: datetime, keep: int | str) -> Verdict:
        """The new backup read back from the target (and no snapshot left on the host)."""
        stamp = folder.stamp_of(when)
        if self.repo is not None:
            return engine.verify(engine.read_ctx(self.host, self.repo, guest), guest, stamp)
        ctx = folder.read_ctx(self.host, self._where, self._at, guest)
        return folder.verify(ctx, guest, stamp, folder.keep_count(keep))

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
