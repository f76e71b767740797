"""guest-lifecycle (guide 4.1) as functions over facts: check, procedure, reads, verify.

The changing actions (start, shutdown, destroy, autostart, noautostart) are one-phase
procedures planned from the facts and planned again just before they run; the reading ones
(status, console, guestinfo) change nothing. :func:`verify` judges by libvirt's state read
afresh after the run, never by what the run printed.
"""

from __future__ import annotations

from kvmops import guestlive
from kvmops.errors import InvalidInput, KvmopsError
from kvmops.executor import Procedure
from kvmops.guests import lifecycle
from kvmops.guests.domain import DomainInfo
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.plan import Plan, Progress
from kvmops.procedures.base import Verdict, single

CHANGES = ("start", "shutdown", "destroy", "autostart", "noautostart")
READS = ("status", "console", "guestinfo")
ACTIONS = (*READS[:1], *CHANGES, *READS[1:])


def check(facts: HostFacts, guest: str, action: str) -> DomainInfo:
    """The action is known and the guest defined (NotFound lists the guests)."""
    if action not in ACTIONS:
        raise InvalidInput(f"action {action!r}: use one of {', '.join(ACTIONS)}")
    return lifecycle.need_domain(facts, guest)


def status_row(info: DomainInfo) -> tuple[str, str, str, str]:
    """guest, state, autostart, persistent."""
    return (info.name, info.state, "yes" if info.autostart else "no", "yes" if info.persistent else "no")


def plan(facts: HostFacts, guest: str, action: str, *, seconds: float = 0, timeout: float = 120) -> Plan:
    """The plan of one action; a reading action plans nothing."""
    if action == "start":
        return lifecycle.start(facts, guest, console_seconds=seconds)
    if action == "shutdown":
        return lifecycle.shutdown(facts, guest, timeout=timeout)
    if action == "destroy":
        return lifecycle.destroy(facts, guest)
    if action in ("autostart", "noautostart"):
        return lifecycle.autostart(facts, guest, on=action == "autostart")
    check(facts, guest, action)
    return Plan(f"{action} of guest {guest}").noop(f"{action} only reads: nothing to change")


def procedure(facts: HostFacts, guest: str, action: str, *, seconds: float = 0,
              timeout: float = 120) -> Procedure:
    check(facts, guest, action)
    return single(facts, f"{action} guest {guest}",
                  lambda f: plan(f, guest, action, seconds=seconds, timeout=timeout))


def read(host: Host, guest: str, action: str, seconds: float, say: Progress) -> list[str]:
    """What a reading action shows: console lines, or the guest agent's facts. Where the host
    cannot give them (no console stream, no agent), what to do instead."""
    try:
        if action == "console":
            text = guestlive.read_console(host, guest, seconds, say)
            return [] if text.strip() else ["(no console output)"]
        if action == "guestinfo":
            return [f"{key} = {value}" for key, value in sorted(guestlive.guest_info(host, guest).items())]
    except KvmopsError as exc:
        if action == "console":
            return [f"cannot read the console here: {exc}", guestlive.console_hint(host, guest)]
        return [f"no guestinfo: {exc}"]
    return []


def verify(facts: HostFacts, guest: str, action: str) -> Verdict:
    """The state libvirt reports now is the one the action wanted."""
    info = lifecycle.need_domain(facts, guest)
    wanted = {
        "start": (info.active, f"guest {guest} runs ({info.state})"),
        "shutdown": (not info.active, f"guest {guest} is off ({info.state})"),
        "destroy": (not info.active, f"guest {guest} is off ({info.state})"),
        "autostart": (info.autostart, f"autostart of {guest} is {'on' if info.autostart else 'off'}"),
        "noautostart": (not info.autostart, f"autostart of {guest} is {'on' if info.autostart else 'off'}"),
    }
    return Verdict.of([wanted.get(action, (True, f"guest {guest} is {info.state} (nothing was to change)"))])
