"""The runner of a recorded site (the demo): plan-only, it runs nothing at all.

A recorded site is its facts as data (:mod:`kvmops.recorded`): plans are made from those facts,
and changes are only recorded as planned (the plan runner around this one never passes them on).
Anything that would still run on the host, a read included, is refused with a message naming
the command: a recorded host answers only through :func:`kvmops.facts.read_facts`.
"""

from __future__ import annotations

from kvmops.cmd import Cmd, Result
from kvmops.errors import KvmopsError
from kvmops.runners.base import LineSink, Runner


class PlanOnly(KvmopsError):
    """Apply, or a command on the host, was asked of a recorded site (plan-only)."""


class RecordedRunner(Runner):
    """Refuses every command: a recorded host has nothing to run on."""

    def __init__(self, host: str, facts_file: str) -> None:
        super().__init__()
        self.host = host
        self.facts_file = facts_file

    @property
    def executes_mutations(self) -> bool:
        return False

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        raise PlanOnly(
            f"`{cmd.display()}` would run on {self.host}, but {self.host} is a recorded site (its facts "
            f"are data in {self.facts_file}; plan-only): nothing runs there. A plan reads such a host "
            "only through its facts (kvmops.facts.read_facts); use the site file of a real host to run this"
        )
