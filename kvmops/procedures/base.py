"""What every procedure shares: the refusal of a precondition, a verdict, a table, one-phase procedures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from kvmops.errors import KvmopsError
from kvmops.executor import Phase, Procedure
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.plan import Plan


class PreconditionFailed(KvmopsError):
    """A runbook's precondition does not hold; nothing was changed."""


def need(condition: object, message: str) -> None:
    """A precondition: refuse with ``message`` when false."""
    if not condition:
        raise PreconditionFailed(message)


@dataclass(frozen=True)
class Verdict:
    """The outcome of a verification: ``ok`` only on the decisive evidence, and what was seen."""

    ok: bool
    lines: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, checks: list[tuple[bool, str]]) -> Verdict:
        """Every check must hold; each line says ok/FAILED and what was looked at."""
        return cls(all(ok for ok, _ in checks), tuple(("ok: " if ok else "FAILED: ") + what for ok, what in checks))

    def render(self) -> str:
        return "\n".join(self.lines)


class Table(NamedTuple):
    """Rows with their column headers, for a runbook to show (``nb.table(*table)``)."""

    rows: list[tuple[object, ...]]
    headers: tuple[str, ...]


def single(facts: HostFacts, title: str, plan: Callable[[HostFacts], Plan],
           wanted: Wanted | None = None) -> Procedure:
    """A procedure of one phase: previewed from ``facts``, planned again just before it runs."""
    phase = Phase(title, plan, wanted or Wanted())
    return Procedure(title, facts=facts).add(phase, plan(facts))
