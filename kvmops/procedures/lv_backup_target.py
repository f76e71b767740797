"""Where lv-backup writes, chosen once: a BorgBackup repository (:mod:`.lv_backup_engine`) or a
place's folder (:mod:`.lv_backup`). One face for both, so the runbook's cells call one thing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kvmops.plan import Progress
from kvmops.procedures import lv_backup as folder
from kvmops.procedures import lv_backup_engine as engine
from kvmops.procedures.backup_store import BackupStore
from kvmops.procedures.base import Verdict
from kvmops.procedures.stages import Ran, Staged
from kvmops.transfer.engine import parse_keep


@dataclass
class BackupTarget(BackupStore):
    """Where ``host``'s guests are backed up: a repository or a place's folder."""

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
