"""host-recovery: after the host lost its power and came back, bring back the guests that were
meant to run, in a declared order, each booted before the next starts.

Meant to run: autostart is on, or libvirt's own log shows the guest running when the host
went down (:mod:`kvmops.guests.history`). Before a guest starts, its disk LVs are checked:
present and active, no snapshot of them invalid, no merge under way. A merge interrupted by
the outage resumes at the LV's activation; LVM's polling of it (which, without lvmpolld, nothing
restarts after a reboot) is resumed with ``lvchange --poll y``, and it is waited for, never
started again.
Each guest's start is planned again from fresh facts just before it runs, so a guest that is
already running (libvirt's autostart, an earlier run of this runbook) is never started twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kvmops import names
from kvmops.cmd import change
from kvmops.errors import KvmopsError
from kvmops.executor import Phase, Procedure
from kvmops.guests.history import PROC_STAT, parse_boot_time, parse_qemu_log, running_when_host_went_down
from kvmops.guests.inventory import GuestRow, inventory_of
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.plan import Booted, Call, MergeDone, Plan, Wait
from kvmops.procedures.base import Table, Verdict
from kvmops.site import Site

WANTED = Wanted(guest_logs=True)
DEFAULT_BOOT_SECONDS = 300.0


@dataclass(frozen=True)
class GuestCheck:
    """One guest after the outage: why it is meant to run, whether it runs, what blocks it."""

    name: str
    why: str  # "" = not meant to run
    running: bool
    merging: tuple[str, ...]  # "VG/snapshot -> VG/origin" merges to wait for
    problems: tuple[str, ...]  # what keeps it from being started

    @property
    def action(self) -> str:
        if not self.why:
            return "leave off (not meant to run)"
        if self.running:
            return "running (nothing to do)"
        if self.problems:
            return "BLOCKED: " + "; ".join(self.problems)
        return "wait for the merge, then start" if self.merging else "start"

    @property
    def to_start(self) -> bool:
        return bool(self.why) and not self.running and not self.problems


def _why(facts: HostFacts, name: str, autostart: bool, active: bool) -> str:
    reasons = ["autostart is on"] if autostart else []
    log = facts.guest_log(name)
    stat = facts.file(PROC_STAT)
    if log and stat and running_when_host_went_down(parse_qemu_log(log), parse_boot_time(stat)):
        reasons.append("libvirt's log shows it running when the host went down")
    return ", ".join(reasons)


def _disks(facts: HostFacts, row: GuestRow) -> tuple[tuple[str, ...], tuple[str, ...]]:
    merging, problems = [], []
    for d in row.disks:
        if d.missing:
            problems.append(f"its disk LV {d.path} is MISSING")
            continue
        if d.lv is None:
            continue
        if d.lv.active is False:
            problems.append(f"its disk LV {d.lv.path} is not active (lvchange -ay {d.lv.path})")
        # LVM merges one snapshot of an origin at a time, marked S; an origin marked O whose
        # snapshots show none of them merging is waited for on each (which one is unknown)
        marked = [s for s in d.snapshots if s.merging]
        waits = marked or (list(d.snapshots) if d.lv.merging else [])
        for s in d.snapshots:
            if s in waits:
                merging.append(f"{s.path} -> {d.lv.path}")
            elif s.invalid:
                problems.append(f"the snapshot {s.path} of its disk overflowed (INVALID): remove it (lv-remove) "
                                "before the guest writes to the disk again")
    return tuple(dict.fromkeys(merging)), tuple(problems)  # a disk named twice waits once


def assess(facts: HostFacts) -> tuple[GuestCheck, ...]:
    """Every defined guest: meant to run or not, running or not, and what blocks it."""
    checks = []
    for row in inventory_of(facts).guests:
        why = _why(facts, row.name, row.autostart, row.active)
        merging, problems = _disks(facts, row)
        checks.append(GuestCheck(row.name, why, row.active, merging, problems))
    return tuple(checks)


def start_order(checks: Sequence[GuestCheck], declared: Sequence[str]) -> list[str]:
    """The guests to start: those of the declared order first (in that order), then the rest
    by name. A declared name that is no guest here is an error naming the guests there are."""
    by_name = {c.name: c for c in checks}
    unknown = [n for n in declared if n not in by_name]
    if unknown:
        raise KvmopsError(f"the start order names {', '.join(unknown)}, which are no guests here "
                          f"(guests: {', '.join(sorted(by_name)) or 'none'})")
    first = [n for n in declared if by_name[n].to_start]
    rest = sorted(c.name for c in checks if c.to_start and c.name not in declared)
    return first + rest


def parse_order(text: str) -> tuple[str, ...]:
    """``"dns1, db1 web1"`` -> ("dns1", "db1", "web1"); each a valid guest name, none twice."""
    order = tuple(n for n in text.replace(",", " ").split() if n)
    for n in order:
        names.guest_name(n)
    twice = sorted({n for n in order if order.count(n) > 1})
    if twice:
        raise KvmopsError(f"the start order names {', '.join(twice)} twice")
    return order


def order_of(site: Site, text: str = "") -> tuple[str, ...]:
    """The start order: ``text`` parsed (:func:`parse_order`), or (empty) the site's ``[recovery] order``."""
    return parse_order(text) if text else site.recovery_order


def table(checks: Sequence[GuestCheck]) -> Table:
    """Each guest: why it is meant to run, whether it runs, what this runbook does about it."""
    return Table([(c.name, c.why or "-", "yes" if c.running else "no", c.action) for c in checks],
                 ("guest", "meant to run because", "running", "action"))


def _start_plan(facts: HostFacts, name: str, boot_seconds: float) -> Plan:
    """One guest's start, planned from the facts of the moment."""
    plan = Plan(f"bring guest {name} back")
    check = next((c for c in assess(facts) if c.name == name), None)
    if check is None or check.running:
        return plan.noop(f"guest {name} is running already: not started again")
    if check.problems:
        raise KvmopsError(f"guest {name} cannot be started now: {'; '.join(check.problems)}")
    vg = facts.site.vg
    for merge in check.merging:
        snap, origin = (p.split("/", 1)[1] for p in merge.split(" -> "))
        plan.add(f"resume LVM's polling of the merge {merge}: after a reboot nothing may poll it (no lvmpolld) "
                 "and it never finishes (this never starts a merge again)",
                 change("lvchange", "--poll", "y", f"{vg}/{origin}"))
        plan.add(f"wait until the merge {merge} has finished (it resumed at activation; never started again)",
                 Wait(f"poll `lvs {vg}` until {snap} is gone", MergeDone(vg, snap, origin)))
    plan.add(f"start guest {name}", Call("start", name))
    return plan.add(f"wait up to {boot_seconds:g} s until {name} has booted (a login prompt on its console)",
                    Wait(f"read the console of {name} until a login prompt", Booted(name, boot_seconds, way_out=(
                        "The guests after it were NOT started: look at it with the guest-unreachable runbook, "
                        "then run host-recovery again"))))


def _planner(name: str, boot_seconds: float) -> Callable[[HostFacts], Plan]:
    return lambda facts: _start_plan(facts, name, boot_seconds)


def procedure(facts: HostFacts, order: Sequence[str], boot_seconds: float = DEFAULT_BOOT_SECONDS) -> Procedure:
    """One phase per guest to start, in order; each planned again from fresh facts."""
    proc = Procedure("bring the guests back after the outage", facts=facts)
    for name in start_order(assess(facts), order):
        phase = Phase(f"start {name}", _planner(name, boot_seconds), WANTED)
        proc.add(phase, phase.plan(facts))
    if not proc.phases:
        proc.add(Phase("nothing to start", lambda f: Plan("guests").noop("every guest meant to run runs")),
                 Plan("guests").noop("every guest meant to run runs already (or is blocked: see above)"))
    return proc


def verify(facts: HostFacts) -> Verdict:
    """Every guest meant to run runs; no merge is pending on a running guest's disk."""
    checks = assess(facts)
    out = [(c.running, f"guest {c.name} runs ({c.why})") for c in checks if c.why]
    out += [(False, f"guest {c.name} still waits for the merge {m}") for c in checks for m in c.merging if c.running]
    return Verdict.of(out or [(True, "no guest is meant to run on this host")])
