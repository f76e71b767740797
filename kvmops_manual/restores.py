"""Each guest's last verified restore, from the journal's ``lv-backup-verify`` runs (pure: the
records and the build's time in, data and markdown out).

The runbook restores a guest's backup under a scratch name and boots it to a login prompt:
its applied run is the proof (a plan-mode run restores nothing and proves nothing, so it is
not counted). Per guest (the run's ``guest`` parameter; the guest's name, whichever host the
restore ran on): the newest applied run and, when that one failed, the newest that passed.
The backup stamp it proved is the run's ``backup`` parameter when one was chosen, else the
one its notebook keeps (``stamps``, read at the edge), else unknown.

Records are untrusted: a run whose fields are not what the journal writes is left out.
A guest is flagged when its backups were never proven, when its newest proof failed, and
when its newest passing proof is older than :data:`STALE`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from kvmops.runbook.journal import RunRecord
from kvmops_manual.journal import host_name
from kvmops_manual.pages import table

RUNBOOK = "lv-backup-verify"
STALE = timedelta(days=8)  # a nightly verification missed for a week
WHY_CHARS = 160
NEVER, FAILED, STALE_STATE, OK = "never", "failed", "stale", "ok"


@dataclass(frozen=True)
class Proof:
    """One applied lv-backup-verify run of a guest."""

    guest: str
    host: str  # where the restore ran
    run_id: str
    when: datetime
    ok: bool
    stamp: str = ""  # the backup it proved ("": not known)
    why: str = ""  # a failure: the step and the error's first line


@dataclass(frozen=True)
class LastRestore:
    """A guest's newest proof and, when that one failed, its newest passing one."""

    guest: str
    newest: Proof | None = None
    last_ok: Proof | None = None

    def state(self, now: datetime, stale: timedelta = STALE) -> str:
        """``never``, ``failed`` (the newest proof), ``stale`` (the newest is too old) or ``ok``."""
        if self.newest is None:
            return NEVER
        if not self.newest.ok:
            return FAILED
        return STALE_STATE if now - self.newest.when > stale else OK

    def flagged(self, now: datetime, stale: timedelta = STALE) -> bool:
        return self.state(now, stale) != OK


def proof_of(rec: RunRecord, stamps: Mapping[str, str] | None = None) -> Proof | None:
    """The proof an applied lv-backup-verify run gives (None: another run, plan mode, or a
    record whose fields do not hold what the journal writes)."""
    if rec.runbook != RUNBOOK or rec.apply is not True or not isinstance(rec.params, dict):
        return None
    guest, chosen = rec.params.get("guest"), rec.params.get("backup")
    if not isinstance(guest, str) or not guest or not isinstance(rec.status, str) or not isinstance(rec.host, str):
        return None
    when = _time(rec.started)
    if when is None or not isinstance(rec.id, str):
        return None
    stamp = chosen if isinstance(chosen, str) and chosen else (stamps or {}).get(rec.id, "")
    return Proof(guest, host_name(rec), rec.id, when, rec.status == "ok", stamp if isinstance(stamp, str) else "",
                 "" if rec.status == "ok" else _why(rec))


def _time(value: object) -> datetime | None:
    """An ISO time with its zone (the journal writes UTC), else None."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _why(rec: RunRecord) -> str:
    error = rec.error if isinstance(rec.error, str) else ""
    step = rec.failed_step if isinstance(rec.failed_step, str) else ""
    first = (error.splitlines() or [""])[0].strip()
    text = "; ".join(p for p in (f"at {step}" if step else "", first) if p) or rec.status
    return text if len(text) <= WHY_CHARS else text[:WHY_CHARS - 3] + "..."


def last_restores(records: Iterable[RunRecord], stamps: Mapping[str, str] | None = None) -> dict[str, LastRestore]:
    """Per guest named by an applied lv-backup-verify run, its last verified restore."""
    proofs = [p for p in (proof_of(r, stamps) for r in records) if p is not None]
    out: dict[str, LastRestore] = {}
    for p in sorted(proofs, key=lambda p: (p.when, p.run_id), reverse=True):
        have = out.get(p.guest)
        if have is None:
            out[p.guest] = LastRestore(p.guest, p, p if p.ok else None)
        elif have.last_ok is None and p.ok:
            out[p.guest] = LastRestore(p.guest, have.newest, p)
    return out


def of(guest: str, found: Mapping[str, LastRestore]) -> LastRestore:
    return found.get(guest) or LastRestore(guest)


def age(when: datetime, now: datetime) -> str:
    """``3 days ago``, ``5 hours ago``, ``just now`` (a time after ``now``: ``just now``)."""
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def cell(last: LastRestore, now: datetime, stale: timedelta = STALE) -> str:
    """One table cell: the state (flagged in bold), the age, the backup proven."""
    state, p = last.state(now, stale), last.newest
    if p is None:
        return "**never**"
    stamp = f", backup `{p.stamp}`" if p.stamp else ""
    if state == FAILED:
        ok = last.last_ok
        before = f"; last ok {age(ok.when, now)}" if ok else "; never ok"
        return f"**failed** {age(p.when, now)}{before}"
    if state == STALE_STATE:
        return f"**stale**: ok {age(p.when, now)}{stamp}"
    return f"ok {age(p.when, now)}{stamp}"


def guest_section(last: LastRestore, now: datetime, stale: timedelta = STALE) -> str:
    """The guest page's section: the newest proof in detail, or why there is none."""
    days = stale.days
    p = last.newest
    if p is None:
        return (f'!!! warning "Backups never proven"\n    No applied `{RUNBOOK}` run of {last.guest} is in the '
                "journal: no backup of it was ever restored and booted. Run the `lv-backup-verify` runbook.")
    rows = [("Verdict", "ok: restored and booted to a login prompt" if p.ok else f"**failed**: {p.why}"),
            ("When", f"{p.when.strftime('%Y-%m-%d %H:%M')} UTC ({age(p.when, now)})"),
            ("Backup", f"`{p.stamp}`" if p.stamp else "not recorded (the newest at the time)"),
            ("Restored on", p.host), ("Run", f"`{p.run_id}`")]
    if not p.ok:
        ok = last.last_ok
        rows.append(("Last passing", f"{age(ok.when, now)} (run `{ok.run_id}`)" if ok else "**never**"))
    flag = {FAILED: f'!!! failure "The newest verification of {last.guest} failed"\n    Its backup did not '
                    "restore and boot; see the run's reason below.\n\n",
            STALE_STATE: f'!!! warning "Stale: last proven {age(p.when, now)}"\n    Older than {days} days: run '
                         "the `lv-backup-verify` runbook again.\n\n"}.get(last.state(now, stale), "")
    return flag + table(("Last verified restore", ""), rows)


def fleet_section(guests: Mapping[str, list[str]], found: Mapping[str, LastRestore], now: datetime,
                  stale: timedelta = STALE) -> str:
    """The fleet page's section: per host the count of guests never proven, failed or stale,
    then every guest (also those verified but in no host's inventory)."""
    known = {g for names in guests.values() for g in names}
    hosts = {**guests, **({"(in no inventory)": sorted(set(found) - known)} if set(found) - known else {})}
    if not any(hosts.values()):
        return "No guests in the journal's inventories and no verified restores."
    counts, rows = [], []
    for host, names in sorted(hosts.items()):
        states = [of(g, found).state(now, stale) for g in names]
        counts.append((host, len(names), *(states.count(s) or "-" for s in (NEVER, FAILED, STALE_STATE)),
                       states.count(OK)))
        rows += [(g, host, cell(of(g, found), now, stale), *_ran(of(g, found))) for g in sorted(names)]
    return "\n\n".join([
        table(("Host", "Guests", "Never proven", "Failed", f"Stale (> {stale.days} days)", "Ok"), counts),
        table(("Guest", "Host", "Last verified restore", "Restored on", "Why it failed"), rows)])


def _ran(last: LastRestore) -> tuple[str, str]:
    """Where the newest proof ran and, when it failed, why."""
    p = last.newest
    return (p.host, p.why or "-") if p else ("-", "-")
