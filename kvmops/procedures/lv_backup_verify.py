"""lv-backup-verify: a backup proven by booting it (the one boot verdict: a login prompt).

The chosen backup (the newest complete one by default) is restored into new LVs under a
scratch name (``<guest>-verify``) and defined with **no network** (every interface left out:
the copy reaches nothing and nothing reaches it, so it can never answer in place of the real
guest), started, and watched until its console shows a login prompt. Then the scratch guest
is forced off, undefined, and its LVs removed: on every path out (cleanup stages). The LVs
are removed without a confirmation because this very run made them (the gate's rule); the
scratch guest's destroy and undefine name it as their target, which the run confirms for the
operator: it refuses to start when a guest or an LV of that name exists already.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from kvmops import names
from kvmops.errors import KvmopsError
from kvmops.executor import Executor, confirmed
from kvmops.guests import hostfile
from kvmops.host import Host
from kvmops.lvm import commands as lvc
from kvmops.plan import Call, Plan, Progress
from kvmops.procedures import lv_backup_restore as rs
from kvmops.procedures.backup_store import BackupStore
from kvmops.procedures.base import Verdict, need
from kvmops.procedures.stages import Ran, Stage, Staged, run_on
from kvmops.transfer import engine as en
from kvmops.transfer.manifest import STAMP_FORMAT
from kvmops.transfer.place import Backup, Place, PlaceFacts

SUFFIX = "-verify"


def scratch_name(guest: str) -> str:
    """The scratch guest's name: ``web1-verify``."""
    return names.guest_name(f"{names.guest_name(guest)}{SUFFIX}")


def check(c: rs.Ctx, backup: Backup, scratch: str) -> str:
    """What the verification does, refused when the scratch name is taken (a guest, an LV)."""
    site = c.target.site
    need(c.target.domain(scratch) is None, f"a guest {scratch} exists on {site.name}: remove it first (guest-remove); "
         "the verification makes and removes its own scratch guest")
    taken = [d.lv for d in rs.disks(c, backup, scratch) if d.state != "new"]
    need(not taken, f"the scratch LV(s) {', '.join(taken)} exist in VG {site.vg}: remove them first (lv-remove)")
    return rs.check(c, backup, scratch, define=True, isolated=True)


def _lv_names(c: rs.Ctx, backup: Backup, scratch: str) -> tuple[tuple[str, str], ...]:
    """Each scratch LV with the tag naming the backup disk it is restored from."""
    m = rs.manifest(backup)
    return tuple((d.lv, rs.of_tag(m, d.backup.lv)) for d in rs.disks(c, backup, scratch))


def _off(c: rs.Ctx, scratch: str, preview: bool = False) -> Plan:
    plan = Plan(f"force the scratch guest {scratch} off")
    info = c.target.domain(scratch)
    if not preview and (info is None or not info.active):
        return plan.noop(f"guest {scratch} does not run")
    return plan.add(f"force {scratch} off (a scratch copy: nothing in it is kept)", Call("destroy", scratch),
                    target=scratch)


def _undefine(c: rs.Ctx, scratch: str, preview: bool = False) -> Plan:
    plan = Plan(f"undefine the scratch guest {scratch}")
    if not preview and c.target.domain(scratch) is None:
        plan.noop(f"guest {scratch} is not defined")
    else:
        plan.add(f"remove {scratch} from libvirt", Call("undefine", scratch), target=scratch)
    path = hostfile.xml_path(c.target.site, scratch)
    if preview or c.target.exists(path):
        plan.add(f"keep {path} as {path}{hostfile.UNDEFINED_SUFFIX}", hostfile.retire_cmd(path))
    return plan


def _remove_lvs(c: rs.Ctx, scratch: str, lvs: tuple[tuple[str, str], ...], preview: bool = False) -> Plan:
    site = c.target.site
    plan = Plan(f"remove the scratch LVs of {scratch}")
    for name, tag in lvs:
        have = c.target.lvm.get(name)
        if preview or (have is not None and tag in have.tags):
            plan.add(f"remove {site.vg}/{name} (restored by this run; the gate allows it only so)",
                     lvc.lvremove(site.vg, name))
    return plan if plan.steps else plan.noop("no scratch LV is left")


def procedure(c: rs.Ctx, backup: Backup, *, scratch: str = "",
              boot_seconds: float = rs.DEFAULT_BOOT_SECONDS) -> Staged[rs.Ctx]:
    """The restore's stages under the scratch name (no network, started, boot verdict), then
    the cleanup stages (each also after a failure)."""
    m = rs.manifest(backup)
    scratch = scratch or scratch_name(m.guest)
    check(c, backup, scratch)
    lvs = _lv_names(c, backup, scratch)
    staged = rs.procedure(c, backup, new_name=scratch, define=True, start=True, isolated=True,
                          boot_seconds=boot_seconds)
    staged.title = f"verify backup {m.stamp} of {m.guest} by booting it as {scratch} on {c.target.site.name}"
    staged.add(Stage("force the scratch guest off", rs.TARGET, lambda x: _off(x, scratch), always=True),
               _off(c, scratch, preview=True))
    staged.add(Stage("undefine the scratch guest", rs.TARGET, lambda x: _undefine(x, scratch), always=True),
               _undefine(c, scratch, preview=True))
    staged.add(Stage("remove the scratch LVs", rs.TARGET, lambda x: _remove_lvs(x, scratch, lvs),
                     always=True), _remove_lvs(c, scratch, lvs, preview=True))
    return staged


# -- running it from a repository --------------------------------------------------------------


def read_ctx(target: Host, repo: en.Repo, guest: str, scratch: str = "", stamp: str = "",
             place: PlaceFacts | None = None) -> rs.Ctx:
    """The repository's backups of ``guest`` (signatures checked against the target's allowed
    signers; ``place``: as read before), then the target's facts for the scratch guest."""
    return rs.read_repo_ctx(target, repo, guest, scratch or scratch_name(guest), stamp, place)


def run(target: Host, repo: en.Repo, staged: Staged[rs.Ctx], backup: Backup, *, scratch: str = "",
        progress: Progress | None = None, place: PlaceFacts | None = None) -> Ran:
    """Run the verification (apply) or walk its plan. The scratch guest's name is confirmed by
    the run itself: :func:`check` refused to plan when it was taken. The repository is read
    once (``place``: as read for the plan)."""
    m = rs.manifest(backup)
    scratch = scratch or scratch_name(m.guest)
    read: list[PlaceFacts] = [place] if place is not None else []

    def fresh(_ex: Mapping[str, Executor]) -> rs.Ctx:
        c = read_ctx(target, repo, m.guest, scratch, m.stamp, read[0] if read else None)
        read[:] = [c.place]
        return c

    return run_on({rs.TARGET: target}, staged, fresh, confirmed(scratch), progress, repos={rs.TARGET: repo.url})


def run_from_place(target: Host, place: Place, place_host: Host, staged: Staged[rs.Ctx], backup: Backup, *,
                   scratch: str = "", progress: Progress | None = None) -> Ran:
    """:func:`run` for a backup in a place's folder (today's format): the data streams from there."""
    m = rs.manifest(backup)
    scratch = scratch or scratch_name(m.guest)
    return run_on({rs.TARGET: target, rs.PLACE: place_host}, staged,
                  lambda _ex: rs.read_ctx(target, place, place_host, m.guest, scratch, m.stamp), confirmed(scratch),
                  progress, places={rs.PLACE: place.directory})


def verdict_text(backup: Backup, host: str, verdict: Verdict, checked: datetime) -> str:
    """The verdict kept beside the backup (JSON): which backup, where, when, ok and why."""
    m = rs.manifest(backup)
    return json.dumps({"guest": m.guest, "stamp": m.stamp, "archive": m.archive, "host": host,
                       "checked": checked.strftime(STAMP_FORMAT), "ok": verdict.ok, "lines": list(verdict.lines)},
                      indent=1, sort_keys=True) + "\n"


def record_plan(repo: en.Repo, backup: Backup, host: str, verdict: Verdict, checked: datetime) -> Plan:
    """The verdict as one more archive beside the backup (an append-only repository takes it)."""
    m = rs.manifest(backup)
    return en.verdict_plan(repo, m.guest, m.stamp, checked.strftime(STAMP_FORMAT),
                           verdict_text(backup, host, verdict, checked))


def record(target: Host, repo: en.Repo, backup: Backup, verdict: Verdict, checked: datetime,
           progress: Progress | None = None) -> list[str]:
    """Keep the verdict beside the backup (:func:`record_plan`), through the executor: borg on
    the target adds the archive to this run's repository only."""
    ex = Executor(target, progress, places={target.name: repo.url})
    return ex.execute(record_plan(repo, backup, target.name, verdict, checked))


# -- one face for the runbook ------------------------------------------------------------------


@dataclass
class Proof(BackupStore):
    """A backup of ``guest`` proven on ``host``: from a repository (``repo``) or a place's folder
    (``where`` on ``at``), restored under ``scratch``. Plan mode walks the plans; no verdict."""

    guest: str = ""

    @classmethod
    def of(cls, host: Host, guest: str, repository: str, place: str) -> Proof:
        """The proof of ``guest``'s backups in ``repository`` (else the site's; neither: ``place``)."""
        proof = cls.open(host, repository, place)
        proof.guest = names.guest_name(guest)
        return proof

    @property
    def scratch(self) -> str:
        return scratch_name(self.guest)

    def read_ctx(self, stamp: str) -> rs.Ctx:
        if self.repo is not None:
            c = read_ctx(self.host, self.repo, self.guest, self.scratch, stamp, self.read)
            self.read = c.place
            return c
        return rs.read_ctx(self.host, self._where, self._at, self.guest, self.scratch, stamp)

    def run(self, staged: Staged[rs.Ctx], backup: Backup, progress: Progress | None = None) -> Proved:
        """Restore, boot, clean up; a failure (a wrong checksum, no login prompt) is the verdict."""
        try:
            ran = self._run(staged, backup, progress)
        except KvmopsError as exc:
            return Proved(Ran([], ()), Verdict.of([(False, f"backup {backup.stamp} of {self.guest}: {exc}")]))
        if not self.host.apply:
            return Proved(ran, Verdict.of([(True, "plan only: nothing was restored or booted")]))
        return Proved(ran, Verdict.of([(True, f"backup {backup.stamp} of {self.guest} restored, booted to a "
                                                    f"login prompt as {self.scratch} on {self.host.name}, "
                                                    "and removed")]))

    def _run(self, staged: Staged[rs.Ctx], backup: Backup, progress: Progress | None) -> Ran:
        if self.repo is not None:
            return run(self.host, self.repo, staged, backup, scratch=self.scratch, progress=progress, place=self.read)
        return run_from_place(self.host, self._where, self._at, staged, backup, scratch=self.scratch, progress=progress)

    def verdict(self, backup: Backup, verdict: Verdict) -> str:
        """The verdict as kept beside a backup (:func:`verdict_text`), checked now on this host."""
        return verdict_text(backup, self.host.name, verdict, datetime.now(UTC))

    def record(self, backup: Backup, verdict: Verdict, progress: Progress | None = None) -> list[str]:
        """An applied run's verdict kept beside a backup in a repository (a place's folder: not kept)."""
        if not self.host.apply or self.repo is None:
            return []
        return record(self.host, self.repo, backup, verdict, datetime.now(UTC), progress)



@dataclass(frozen=True)
class Proved:
    """What the run did and its verdict."""

    ran: Ran
    verdict: Verdict
