"""Fault injection for tests.

- In-process plans: :class:`FaultRunner` wraps a real runner and fails the Nth selected command
  (default: the Nth mutating command) without executing it, like a command failing on the host.
- Runbooks executed in a kernel: ``fault_env(n, match)`` gives the environment that makes
  kvmops' own runners do the same inside the kernel (``$KVMOPS_FAULT_AT``/``$KVMOPS_FAULT_MATCH``,
  see :mod:`kvmops.runners.faults`).
"""

from __future__ import annotations

import re

from kvmops.cmd import Cmd, Result
from kvmops.runners.base import LineSink, Runner
from kvmops.runners.faults import FAULT_AT_ENV, FAULT_EXIT, FAULT_MATCH_ENV, FAULT_WHEN_ENV


class FaultRunner(Runner):
    """``FaultRunner(LocalRunner(), fail_at=2)``: the second mutating command fails (exit 86).

    ``match``: count instead every command whose display matches this regex (``re.search``).
    ``failed``: the command that was made to fail (None until then).
    """

    def __init__(self, inner: Runner, fail_at: int, match: str = "") -> None:
        super().__init__()
        self.inner, self.fail_at, self.match = inner, fail_at, match
        self.host = inner.host
        self.seen = 0
        self.failed: Cmd | None = None

    @property
    def executes_mutations(self) -> bool:
        return self.inner.executes_mutations

    def _selected(self, cmd: Cmd) -> bool:
        return re.search(self.match, cmd.display()) is not None if self.match else cmd.mutates

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        if self._selected(cmd):
            self.seen += 1
            if self.seen == self.fail_at:
                self.failed = cmd
                return Result(cmd, self.host, FAULT_EXIT, "", f"injected fault: command #{self.seen}\n", 0.0)
        return self.inner._execute(cmd, on_line)

    def close(self) -> None:
        self.inner.close()


def fault_env(n: int | None, match: str = "", when: str = "before") -> dict[str, str]:
    """The environment entries that make the Nth effect of a kernel fail ({} for none),
    ``before`` it runs or ``after`` it ran."""
    if n is None:
        return {}
    return {FAULT_AT_ENV: str(n), FAULT_WHEN_ENV: when, **({FAULT_MATCH_ENV: match} if match else {})}
