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

from kvmops.cmd import Cmd, Kind

Progress = Callable[[str], None]

CALL_VERBS = ("define", "start", "shutdown", "destroy", "undefine", "autostart", "eject", "blockresize")


@dataclass(frozen=True)
class Call:
    """A libvirt call, as data: the executor makes it through the libvirt adapter, and the
    safety gate knows from ``verb`` and ``guest`` what it does to which guest.

    ``display`` is what an admin would type (``virsh define X.xml``); ``xml``: the definition
    of a ``define``; ``flag``: autostart on or off; ``device``: the drive of an ``eject``
    (its target, ``sda``) or the disk of a ``blockresize`` (``vda``); ``size``: bytes.
    """

    verb: str
    guest: str
    display: str = ""
    xml: str = ""
    flag: bool = True
    device: str = ""
    size: int = 0
    kind: Kind = Kind.CHANGE

    def __post_init__(self) -> None:
        if self.verb not in CALL_VERBS:
            raise ValueError(f"unknown libvirt call {self.verb!r} (known: {', '.join(CALL_VERBS)})")
        if not self.display:
            object.__setattr__(self, "display", f"virsh {self.verb} {self.guest}")


# -- what a wait waits for (the executor's waits carry them out: kvmops.waits) ---------------


@dataclass(frozen=True)
class MergeDone:
    """The snapshot ``vg/snap`` merged into ``origin``: the snapshot is gone, no merge runs."""

    vg: str
    snap: str
    origin: str
    timeout: float = 3600.0
    poll: float = 2.0


@dataclass(frozen=True)
class GuestOff:
    """The guest is shut off (after an ACPI request)."""

    guest: str
    timeout: float
    poll: float = 0.5


@dataclass(frozen=True)
class Booted:
    """The guest's serial console shows a login prompt (:mod:`kvmops.guests.boot`).

    ``required``: a boot not verified in ``seconds`` fails the step, and ``way_out`` says
    what to do then; otherwise the verdict is only reported (a start is not a boot).
    """

    guest: str
    seconds: float
    required: bool = True
    way_out: str = ""


@dataclass(frozen=True)
class BridgeGone:
    """The bridge's interface is gone (NetworkManager deletes it after its profile)."""

    bridge: str
    timeout: float = 15.0


@dataclass(frozen=True)
class BridgeReady:
    """The bridge exists, with ageing time 0 and no address."""

    bridge: str


Until = MergeDone | GuestOff | Booted | BridgeGone | BridgeReady


@dataclass(frozen=True)
class Wait:
    """Waiting for a change to take effect (a merge's end, a power-off, a boot): reads only.

    Plan mode lists it and does not run it: what it would wait for has not happened.
    """

    display: str
    until: Until


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

    Afterwards each ``verify`` command (a sha256 of an end, run on its own host: the target
    read back) must report the stream's sha256, and so must ``expect`` when given; ``measure``
    commands are only recorded (e.g. the sha256 of the raw data behind a compressed stream); they
    read data that cannot change (a snapshot) and run while the data streams.
    ``source_sum``, when given, says that the source end is the stream itself: the source reads
    data that cannot change while it streams (a snapshot), so the stream's sha256, computed in
    flight, is the source's, and the source is not read a second time after the stream; the
    command (the source's sha256 on its host) runs only when ``reuse`` compares the ends before
    a stream. ``size``: the bytes the stream must carry (None: unknown). ``reuse``: the target
    may already hold the data (an earlier run's copy): the ``source_sum`` and ``verify`` sums
    are compared first and the stream is skipped when they agree. ``key`` names the result (the
    executor keeps it, :attr:`Executor.transferred`).
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
    source_sum: Endpoint | None = None

    @property
    def source_is_stream(self) -> bool:
        """The source's sha256 is the stream's own (hashed in flight, not read again)."""
        return self.source_sum is not None

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
        if self.source_sum is not None:
            before = f"; before a stream it is read ({self.source_sum.display()})" if self.reuse else ""
            lines.append(f"# the source cannot change while it streams: its sha256 is the stream's, computed in "
                         f"flight{before}")
            if checks:
                lines.append("# then the same sha256 read back: " + "; ".join(checks))
        elif checks:
            lines.append("# then the same sha256 on both ends: " + "; ".join(checks))
        if self.measure:
            lines.append("# and recorded: " + "; ".join(e.display() for e in self.measure))
        if self.expect:
            lines.append(f"# the data's sha256 must be {self.expect}")
        return "\n".join(lines)


Effect = Cmd | Call | Wait | Transfer


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
        if isinstance(self.effect, Cmd | Call | Transfer):
            return self.effect.kind
        return Kind.READ

    @property
    def mutates(self) -> bool:
        return self.kind is Kind.CHANGE

    def text(self) -> str:
        if isinstance(self.effect, Cmd):
            return self.effect.display()
        if isinstance(self.effect, Call):
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
