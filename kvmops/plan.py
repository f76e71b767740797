"""Plans: ordered steps with a one-line reason each, shown before anything runs.

An operation compares facts (:mod:`kvmops.facts`) with the wanted state and returns a
:class:`Plan`; it does no I/O. A step's effect is a command (:class:`~kvmops.cmd.Cmd`), a
libvirt call (:class:`Call`), a wait for a change to take effect (:class:`Wait`) or a data
transfer between two hosts (:class:`Transfer`); a step
without one is a no-op that says why ("already so"), so re-running after a failure converges.
Every plan runs through the one executor (:mod:`kvmops.executor`), in plan and apply mode
alike. Steps are computed from the facts *before* the plan; a plan says so where it matters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kvmops.cmd import Cmd, Kind

if TYPE_CHECKING:
    from kvmops.host import Host
    from kvmops.virt import Virt

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Call:
    """A libvirt call: ``display`` is what an admin would type (``virsh define X.xml``)."""

    display: str
    fn: Callable[[Virt], Any]
    kind: Kind = Kind.CHANGE


@dataclass(frozen=True)
class Wait:
    """Waiting for a change to take effect (a merge's end, a power-off): reads only.

    Plan mode lists it and does not run it: what it would wait for has not happened.
    """

    display: str
    fn: Callable[[Host, Progress], object]


@dataclass(frozen=True)
class Nested:
    """A kvmops operation that plans and runs its own steps on the host when it runs, from
    what it finds there (tweak an image: map the disk, mount its root, plan each tweak from
    the files in it, apply, unmount). A change: run only when a plan is applied; plan mode
    lists it. Its own commands go through the host's runner (recorded, fault-injectable).
    """

    display: str
    fn: Callable[[Host, Progress], object]
    kind: Kind = Kind.CHANGE


@dataclass(frozen=True)
class Endpoint:
    """A command of a data transfer and the host it runs on (``host``: the name the executor
    knows that host's runner by, a site's name)."""

    host: str
    cmd: Cmd

    def display(self) -> str:
        return f"{self.host}$ {self.cmd.display()}"


@dataclass(frozen=True)
class Transfer:
    """Data streamed from ``source`` (its stdout) into ``target`` (its stdin) through kvmops,
    which computes the sha256 of the stream on the way (:mod:`kvmops.transfer`).

    Afterwards each ``verify`` command (``sha256sum``, run on its own host) must report the
    stream's sha256, and so must ``expect`` when given; ``measure`` commands are only recorded
    (e.g. the sha256 of the raw data behind a compressed stream). ``size``: the bytes the
    stream must carry (None: unknown). ``reuse``: the target may already hold the data (an
    earlier run's copy): the ``verify`` sums are compared first and the stream is skipped when
    they agree. ``key`` names the result (the executor keeps it, :attr:`Executor.transferred`).
    """

    source: Endpoint
    target: Endpoint
    size: int | None = None
    verify: tuple[Endpoint, ...] = ()
    measure: tuple[Endpoint, ...] = ()
    expect: str | None = None
    reuse: bool = False
    key: str = ""
    kind: Kind = Kind.CHANGE

    @property
    def display(self) -> str:
        """One line, as the command log keeps it: ``src$ dd ... | dst$ dd ...``."""
        return f"{self.source.display()} | {self.target.display()}"

    def text(self) -> str:
        """The display with the checks that follow it, for a rendered plan."""
        lines = [self.display]
        if self.reuse:
            lines.insert(0, "# (skipped when the sha256 sums below agree already: an earlier run's copy)")
        checks = [e.display() for e in self.verify]
        if checks:
            lines.append("# then the same sha256 on both ends: " + "; ".join(checks))
        if self.measure:
            lines.append("# and recorded: " + "; ".join(e.display() for e in self.measure))
        if self.expect:
            lines.append(f"# the data's sha256 must be {self.expect}")
        return "\n".join(lines)


Effect = Cmd | Call | Wait | Nested | Transfer


@dataclass(frozen=True)
class Step:
    """One step: an effect with the reason for it; no effect means a no-op.

    ``target`` marks a destructive step: it runs only when ``target`` was confirmed.
    """

    reason: str
    effect: Effect | None = None
    target: str | None = None

    @property
    def noop(self) -> bool:
        return self.effect is None

    @property
    def cmd(self) -> Cmd | None:
        """The command of this step, when its effect is one."""
        return self.effect if isinstance(self.effect, Cmd) else None

    @property
    def call(self) -> Call | None:
        """The libvirt call of this step, when its effect is one."""
        return self.effect if isinstance(self.effect, Call) else None

    @property
    def transfer(self) -> Transfer | None:
        """The data transfer of this step, when its effect is one."""
        return self.effect if isinstance(self.effect, Transfer) else None

    @property
    def kind(self) -> Kind:
        if isinstance(self.effect, Cmd | Call | Nested | Transfer):
            return self.effect.kind
        return Kind.READ

    @property
    def mutates(self) -> bool:
        return self.kind is Kind.CHANGE

    def text(self) -> str:
        if isinstance(self.effect, Cmd):
            return self.effect.display()
        if isinstance(self.effect, Call | Nested):
            return self.effect.display
        if isinstance(self.effect, Wait):
            return f"# {self.effect.display}"
        if isinstance(self.effect, Transfer):
            return self.effect.text()
        return "# nothing to do"


@dataclass
class Plan:
    """What an operation will do, in order."""

    title: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, reason: str, effect: Effect | None = None, *, target: str | None = None) -> Plan:
        self.steps.append(Step(reason, effect, target))
        return self

    def noop(self, reason: str) -> Plan:
        return self.add(reason)

    def extend(self, other: Plan) -> Plan:
        self.steps.extend(other.steps)
        self.notes.extend(other.notes)
        return self

    @property
    def empty(self) -> bool:
        """True when every step is a no-op: the goal is already met."""
        return all(s.noop for s in self.steps)

    @property
    def targets(self) -> list[str]:
        return [s.target for s in self.steps if s.target]

    def render(self) -> str:
        """The plan as shell-like text: each step's reason as a comment, then its command."""
        lines = [f"# Plan: {self.title}"]
        for note in self.notes:
            lines.append(f"# NOTE: {note}")
        for i, step in enumerate(self.steps, 1):
            flag = "  [DESTRUCTIVE: needs confirm=" + step.target + "]" if step.target else ""
            lines.append(f"# {i}. {step.reason}{flag}")
            lines.append(step.text())
        if not self.steps:
            lines.append("# (no steps)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def _repr_markdown_(self) -> str:
        return "```sh\n" + self.render() + "\n```"
