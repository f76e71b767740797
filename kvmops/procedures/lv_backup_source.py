"""Where lv-backup-restore reads a backup, chosen once: a BorgBackup repository (borg on the
target extracts each disk) or a place's folder (today's format, decompressed on the place).
One face for both, so the runbook's cells call one thing (as :mod:`.lv_backup_target` for
lv-backup and :class:`.lv_backup_verify.Proof` for lv-backup-verify)."""

from __future__ import annotations

from dataclasses import dataclass

from kvmops.plan import Progress
from kvmops.procedures import lv_backup_restore as rs
from kvmops.procedures.backup_store import BackupStore
from kvmops.procedures.stages import Ran, Staged
from kvmops.transfer.place import Backup


@dataclass
class RestoreSource(BackupStore):
    """The backups restored on ``host``: a repository's or a place's folder's (a restore never
    writes the repository, so it is read once)."""

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
