"""The nightly backup: every guest of a host into its BorgBackup repository, one at a time.

Each guest is backed up by lv-backup's stages (:mod:`kvmops.procedures.lv_backup_engine`),
holding its lock, then the retention the command names (borg prune of that guest's archives:
giving ``--keep`` is the operator's confirmation for every guest's prune). A guest that fails
does not stop the others; the summary names each guest's outcome and the exit code is 0 only
when every guest was backed up and its new archive verified complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from kvmops.errors import KvmopsError
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.procedures import lv_backup as bk
from kvmops.procedures import lv_backup_engine as be
from kvmops.procedures.base import PreconditionFailed, Verdict
from kvmops.transfer import engine as en


@dataclass(frozen=True)
class Outcome:
    guest: str
    ok: bool
    detail: str
    seconds: float = 0.0
    skipped: bool = False


def guests_of(facts: HostFacts) -> tuple[tuple[str, str], ...]:
    """Each guest of the host, with "" when lv-backup can copy it, else why not."""
    out = []
    for row in facts.domains:
        try:
            bk.disk_lvs(facts, row.name)
            out.append((row.name, ""))
        except PreconditionFailed as exc:
            out.append((row.name, str(exc)))
    return tuple(out)


def nightly(guests: Iterable[tuple[str, str]], back_up: Callable[[str], Verdict],
            clock: Callable[[], float] = time.monotonic) -> list[Outcome]:
    """Back up each guest (``back_up`` returns the new backup's verdict); a failure is its
    outcome and the next guest follows."""
    out = []
    for guest, why_not in guests:
        if why_not:
            out.append(Outcome(guest, True, f"skipped: {why_not}", skipped=True))
            continue
        t0 = clock()
        try:
            verdict = back_up(guest)
            out.append(Outcome(guest, verdict.ok, verdict.render(), clock() - t0))
        except KvmopsError as exc:
            out.append(Outcome(guest, False, f"{type(exc).__name__}: {exc}", clock() - t0))
    return out


def summary(outcomes: list[Outcome], done_as: str = "backed up") -> str:
    """A line per guest, then the counts (``done_as``: what an ok guest was)."""
    lines = []
    for o in outcomes:
        state = "skipped" if o.skipped else "ok" if o.ok else "FAILED"
        first = o.detail.splitlines()[0] if o.detail else ""
        lines.append(f"{o.guest}: {state} ({o.seconds:.0f} s)" + (f": {first}" if (first and not o.ok) or o.skipped
                                                                   else ""))
    done = sum(1 for o in outcomes if o.ok and not o.skipped)
    failed = sum(1 for o in outcomes if not o.ok)
    lines.append(f"{done} guest(s) {done_as}, {failed} failed, {sum(o.skipped for o in outcomes)} skipped")
    return "\n".join(lines)


def exit_code(outcomes: list[Outcome]) -> int:
    """0 when no guest failed, else 1."""
    return 0 if all(o.ok for o in outcomes) else 1


def back_up_one(host: Host, repo: en.Repo, keep: en.Keep, restart: bool,
                progress: Callable[[str], None] | None = None) -> Callable[[str], Verdict]:
    """One guest's backup as the nightly runs it: planned from fresh facts, run (the executor
    holds the guest's lock from the first stage to the last; the repository is not read again),
    its new archive read back (plan mode: the plan walks the executor)."""
    def one(guest: str) -> Verdict:
        when = datetime.now(UTC)
        c = be.read_ctx(host, repo, guest)
        staged = be.procedure(c, host, guest, when, keep=keep, restart=restart)
        be.run(host, repo, staged, guest, guest, progress=progress, place=c.place)
        if not host.apply:
            return Verdict.of([(True, f"planned: {len(staged.stages)} stages (plan only, nothing changed)")])
        return be.verify(be.read_ctx(host, repo, guest), guest, bk.stamp_of(when))

    return one
