"""Fault injection for tests: make the Nth command of this process fail. Does nothing unless set.

``KVMOPS_FAULT_AT=N`` (a positive number): the Nth *selected* command is not executed; it
fails with exit code 86 and the stderr ``kvmops: injected fault ...``, exactly like a command
that failed on the host (``CommandFailed`` when checked). Selected are, by default, the
mutating commands that really execute (never those a plan runner only records).

``KVMOPS_FAULT_MATCH=REGEX``: select instead every executed command whose display (as in the
plan, secrets masked) matches REGEX (``re.search``), mutating or not, e.g.
``^(losetup --find|partx --add|mount )`` for the read-only mapping of ``guest-inspect``.

``KVMOPS_FAULT_WHEN=after``: the selected effect really runs, then reports the failure (a
connection lost after the host did the work); the default ``before`` fails without running it.

libvirt calls (:class:`kvmops.plan.Call`) are selected exactly like commands, by their display
(``virsh define ...``): the executor asks :func:`fault_for` before and after each call.

Counting is per process (a runbook's kernel is one process) and starts again whenever the
setting changes (or on :func:`reset`). Used by the fault tests (tests/integration/test_faults_runbooks.py): run a
runbook with each of its commands failing in turn, then check cleanup and convergence.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from kvmops.cmd import Cmd, Result
from kvmops.errors import InvalidInput

FAULT_AT_ENV = "KVMOPS_FAULT_AT"
FAULT_MATCH_ENV = "KVMOPS_FAULT_MATCH"
FAULT_WHEN_ENV = "KVMOPS_FAULT_WHEN"
FAULT_EXIT = 86
WHENS = ("before", "after")

_count: dict[tuple[int, str, str], int] = {}  # {(N, REGEX, WHEN): effects selected so far}: one entry at most


def reset() -> None:
    """Start counting again (for tests that set the same fault twice in one process)."""
    _count.clear()


def _setting() -> tuple[int, str, str] | None:
    at = os.environ.get(FAULT_AT_ENV, "")
    if not at:
        return None
    if not at.isdigit() or int(at) < 1:
        raise InvalidInput(f"{FAULT_AT_ENV}={at!r}: give the number (1, 2, ...) of the command that shall fail")
    return int(at), os.environ.get(FAULT_MATCH_ENV, ""), _when()


def _selected(display: str, mutates: bool, executes: bool, match: str) -> bool:
    if not executes:
        return False
    if match:
        try:
            return re.search(match, display) is not None
        except re.error as exc:
            raise InvalidInput(f"{FAULT_MATCH_ENV}={match!r} is not a regular expression: {exc}") from None
    return mutates


def _when() -> str:
    when = os.environ.get(FAULT_WHEN_ENV, "") or "before"
    if when not in WHENS:
        raise InvalidInput(f"{FAULT_WHEN_ENV}={when!r}: use before or after")
    return when


@dataclass(frozen=True)
class Fault:
    """The selected effect fails ``before`` it runs or ``after`` it ran; ``why`` is its stderr."""

    when: str
    why: str


def fault_for(display: str, mutates: bool, executes: bool) -> Fault | None:
    """The injected fault of this effect when it is the selected Nth one, else None.

    ``executes``: whether the effect would really run (False for a change in plan mode).
    """
    setting = _setting()
    if setting is None or not _selected(display, mutates, executes, setting[1]):
        return None
    at, match, when = setting
    n = _count.get(setting, 0) + 1
    _count.clear()  # a changed setting starts from zero
    _count[setting] = n
    if n != at:
        return None
    why = f"kvmops: injected fault: effect #{n} failed {when} it ran on purpose ({FAULT_AT_ENV}={at}"
    why += f", {FAULT_MATCH_ENV}={match!r})" if match else ")"
    return Fault(when, why + "\n")


def failed(cmd: Cmd, host: str, fault: Fault, ran: Result | None = None) -> Result:
    """The result a command reports under ``fault`` (keeping what it printed when it ran)."""
    out, err = (ran.stdout, ran.stderr) if ran is not None else ("", "")
    return Result(cmd, host, FAULT_EXIT, out, err + fault.why, ran.seconds if ran else 0.0)
