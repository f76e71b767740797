"""Fault injection for tests: make the Nth command of this process fail. Does nothing unless set.

``KVMOPS_FAULT_AT=N`` (a positive number): the Nth *selected* command is not executed; it
fails with exit code 86 and the stderr ``kvmops: injected fault ...``, exactly like a command
that failed on the host (``CommandFailed`` when checked). Selected are, by default, the
mutating commands that really execute (never those a plan runner only records).

``KVMOPS_FAULT_MATCH=REGEX``: select instead every executed command whose display (as in the
plan, secrets masked) matches REGEX (``re.search``), mutating or not, e.g.
``^(losetup --find|partx --add|mount )`` for the read-only mapping of ``guest-inspect``.

Counting is per process (a runbook's kernel is one process) and starts again whenever the
setting changes (or on :func:`reset`). Used by the fault tests (tests/integration/test_faults_runbooks.py): run a
runbook with each of its commands failing in turn, then check cleanup and convergence.
"""

from __future__ import annotations

import os
import re

from kvmops.cmd import Cmd, Result
from kvmops.errors import InvalidInput

FAULT_AT_ENV = "KVMOPS_FAULT_AT"
FAULT_MATCH_ENV = "KVMOPS_FAULT_MATCH"
FAULT_EXIT = 86

_count: dict[tuple[int, str], int] = {}  # {(N, REGEX): commands selected so far}: one entry at most


def reset() -> None:
    """Start counting again (for tests that set the same fault twice in one process)."""
    _count.clear()


def _setting() -> tuple[int, str] | None:
    at = os.environ.get(FAULT_AT_ENV, "")
    if not at:
        return None
    if not at.isdigit() or int(at) < 1:
        raise InvalidInput(f"{FAULT_AT_ENV}={at!r}: give the number (1, 2, ...) of the command that shall fail")
    return int(at), os.environ.get(FAULT_MATCH_ENV, "")


def _selected(cmd: Cmd, executes: bool, match: str) -> bool:
    if not executes:
        return False
    if match:
        try:
            return re.search(match, cmd.display()) is not None
        except re.error as exc:
            raise InvalidInput(f"{FAULT_MATCH_ENV}={match!r} is not a regular expression: {exc}") from None
    return cmd.mutates


def injected(cmd: Cmd, host: str, executes: bool) -> Result | None:
    """The failed result of ``cmd`` when it is the selected Nth command, else None.

    ``executes``: whether the runner would really execute ``cmd`` (False for a mutating
    command under the plan runner).
    """
    setting = _setting()
    if setting is None or not _selected(cmd, executes, setting[1]):
        return None
    at, match = setting
    n = _count.get(setting, 0) + 1
    _count.clear()  # a changed setting starts from zero
    _count[setting] = n
    if n != at:
        return None
    why = f"kvmops: injected fault: command #{n} failed on purpose ({FAULT_AT_ENV}={at}"
    why += f", {FAULT_MATCH_ENV}={match!r})" if match else ")"
    return Result(cmd, host, FAULT_EXIT, "", why + "\n", 0.0)
