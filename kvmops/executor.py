"""The one executor: every plan, in plan mode and in apply mode, runs through :class:`Executor`.

- **Commands** go to the host's runner (recorded, secrets masked, fault-injectable); in plan
  mode the runner records a change without executing it.
- **libvirt calls** (:class:`~kvmops.plan.Call`) are recorded in the same command log with
  their ``virsh`` display and are fault-injectable like commands; in plan mode a changing call
  is recorded as planned, never made.
- **Waits** run after changes in apply mode; plan mode lists them.
- **Data transfers** (:class:`~kvmops.plan.Transfer`, a stream from one host to another) are
  recorded in the command log like a command, fault-injectable before and after, planned-only
  in plan mode; their endpoints' hosts are the executor's own and its ``peers``.
- Reads after the first change of a plan are checks of that change: plan mode lists them
  ("planned check"), since what they would read does not exist yet.

Confirmations are checked for every destructive step of every plan of a run *before* the
first change (:func:`require_confirmed`); a :class:`Procedure` plans each later phase again
from fresh facts just before it runs and refuses a destructive target nobody confirmed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kvmops.cmd import Cmd, Kind
from kvmops.errors import CommandFailed, ConfirmationRequired, KvmopsError
from kvmops.facts import HostFacts, Wanted, read_facts
from kvmops.host import Host
from kvmops.plan import Call, Nested, Plan, Progress, Step, Transfer, Wait
from kvmops.progress import printer
from kvmops.runners import faults
from kvmops.runners.base import Runner

if TYPE_CHECKING:
    from kvmops.transfer.run import Transferred

Confirmed = frozenset[str]


def confirmed(*values: str | None) -> Confirmed:
    """The confirmed targets from confirm parameters (each may list several, comma-separated)."""
    return frozenset(t.strip() for v in values if v for t in v.split(",") if t.strip())


def require_confirmed(plans: Iterable[Plan], given: Confirmed) -> None:
    """Refuse, before anything runs, when any destructive step's target was not confirmed.

    The message names every missing target with its step, so one retry is enough.
    """
    missing: dict[str, list[str]] = {}
    for plan in plans:
        for i, step in enumerate(plan.steps, 1):
            if step.target and step.target not in given:
                missing.setdefault(step.target, []).append(f"{plan.title}: step {i} ({step.reason})")
    if not missing:
        return
    got = ", ".join(sorted(given)) if given else "none"
    wants = "; ".join(f"confirm={t!r} for {', '.join(where)}" for t, where in missing.items())
    raise ConfirmationRequired(f"destructive steps need their exact target confirmed: {wants} "
                               f"(confirmed: {got}); nothing was changed")


class StepFailed(KvmopsError):
    """A plan step failed; names the step and keeps the cause."""

    def __init__(self, index: int, step: Step, cause: KvmopsError) -> None:
        self.index = index
        self.step = step
        self.cause = cause
        super().__init__(f"step {index} failed ({step.reason}): {cause}")


@dataclass(frozen=True)
class Phase:
    """A part of a procedure that is planned from fresh facts just before it runs."""

    title: str
    plan: Callable[[HostFacts], Plan]
    wanted: Wanted = field(default_factory=Wanted)


@dataclass
class Procedure:
    """Phases with their preview: each phase planned up front from the facts read at the
    start (later phases as the earlier ones would leave the host), shown before anything runs.
    """

    title: str
    phases: list[Phase] = field(default_factory=list)
    preview: list[Plan] = field(default_factory=list)

    def add(self, phase: Phase, preview: Plan) -> Procedure:
        self.phases.append(phase)
        self.preview.append(preview)
        return self


class Executor:
    """Runs plans on a host: applies them when ``host.apply``, else walks them as a plan."""

    def __init__(self, host: Host, progress: Progress | None = None, *,
                 peers: Mapping[str, Runner] | None = None) -> None:
        self.host = host
        self.say: Progress = progress or printer()
        self.peers: Mapping[str, Runner] = peers or {}
        self.transferred: list[Transferred] = []  # the results of the transfers run, in order

    @property
    def applying(self) -> bool:
        return self.host.apply

    # -- plans and procedures -----------------------------------------------------------------

    def execute(self, plan: Plan, given: Confirmed = frozenset()) -> list[str]:
        """Run ``plan``: one line per step saying what happened (done, planned, ok)."""
        if self.applying:
            require_confirmed([plan], given)
        lines: list[str] = []
        changed = False
        for i, step in enumerate(plan.steps, 1):
            line, did_change = self._step(i, step, changed)
            changed = changed or did_change
            lines.append(line)
        return lines

    def run_procedure(self, proc: Procedure, given: Confirmed = frozenset()) -> list[str]:
        """Every confirmation first; then each phase planned from fresh facts and executed
        (apply), or each previewed phase walked as a plan (plan mode)."""
        if self.applying:
            require_confirmed(proc.preview, given)
        lines: list[str] = []
        for phase, preview in zip(proc.phases, proc.preview, strict=True):
            plan = self._fresh(phase, given) if self.applying else preview
            lines.extend(self.execute(plan, given))
        return lines

    def _fresh(self, phase: Phase, given: Confirmed) -> Plan:
        plan = phase.plan(read_facts(self.host, phase.wanted))
        new = [t for t in plan.targets if t not in given]
        if new:
            raise ConfirmationRequired(
                f"{phase.title}: planned again from the host as it is now, it needs confirm="
                f"{new[0]!r}, which the plan shown before did not ask for (the host changed meanwhile); "
                "nothing of this phase was changed. Look at the host and run again"
            )
        return plan

    # -- one step -------------------------------------------------------------------------------

    def _step(self, i: int, step: Step, changed: bool) -> tuple[str, bool]:
        if step.noop:
            return f"{i}. ok (nothing to do): {step.reason}", False
        if not self.applying:
            return self._plan_step(i, step, changed)
        self.say(f"step {i}: {step.reason}")
        try:
            self.effect(step)
        except KvmopsError as exc:
            raise StepFailed(i, step, exc) from exc
        return f"{i}. done: {step.reason}", step.mutates

    def _plan_step(self, i: int, step: Step, changed: bool) -> tuple[str, bool]:
        if step.mutates:
            self.effect(step)  # recorded as planned, not executed
            return f"{i}. planned: {step.reason}", True
        if changed or isinstance(step.effect, Wait):
            return f"{i}. planned check (after the change): {step.reason}", False
        try:
            self.effect(step)  # a read before any change: it runs in plan mode too
        except KvmopsError as exc:
            raise StepFailed(i, step, exc) from exc
        return f"{i}. done: {step.reason}", False

    def effect(self, step: Step) -> None:
        """The one place an effect of a plan happens."""
        eff = step.effect
        if isinstance(eff, Cmd):
            self.host.runner.run(eff, on_line=self.say if eff.timeout is None else None)
        elif isinstance(eff, Call):
            self.call(eff)
        elif isinstance(eff, Wait):
            eff.fn(self.host, self.say)
        elif isinstance(eff, Nested):
            self.nested(eff)
        elif isinstance(eff, Transfer):
            self.transfer(eff)

    def nested(self, op: Nested) -> object:
        """A nested operation: run when applying (its own commands are recorded one by one);
        in plan mode recorded as planned, never run."""
        if not self.applying:
            started = datetime.now(UTC).isoformat(timespec="seconds")
            self.host.runner.record(started, op.display, op.kind is Kind.CHANGE, None, 0.0)
            return None
        return op.fn(self.host, self.say)

    def call(self, call: Call) -> object:
        """A libvirt call: recorded like a command, fault-injectable, planned-only in plan mode."""
        runner = self.host.runner
        started = datetime.now(UTC).isoformat(timespec="seconds")
        mutates = call.kind is Kind.CHANGE
        executes = self.applying or not mutates
        if not executes:
            runner.record(started, call.display, mutates, None, 0.0)
            return None
        fault = faults.fault_for(call.display, mutates, executes)
        t0 = time.monotonic()
        result: object = None
        try:
            if fault is None or fault.when == "after":
                result = call.fn(self.host.virt)
        except KvmopsError:
            runner.record(started, call.display, mutates, 1, time.monotonic() - t0)
            raise
        if fault is not None:
            runner.record(started, call.display, mutates, faults.FAULT_EXIT, time.monotonic() - t0)
            raise CommandFailed(runner.host, (call.display,), faults.FAULT_EXIT, fault.why)
        runner.record(started, call.display, mutates, 0, time.monotonic() - t0)
        return result


    def runner_of(self, name: str) -> Runner:
        """The runner of a transfer endpoint's host: a peer's, or this host's own."""
        if name in self.peers:
            return self.peers[name]
        if name == self.host.name:
            return self.host.runner
        raise KvmopsError(f"a transfer names host {name!r}, which this run does not know "
                          f"(known: {', '.join(sorted({self.host.name, *self.peers}))})")

    def transfer(self, t: Transfer) -> Transferred | None:
        """A data transfer: recorded like a command, fault-injectable before and after,
        planned-only in plan mode; the result is kept in :attr:`transferred`."""
        from kvmops.transfer.run import run_transfer

        runner = self.host.runner
        started = datetime.now(UTC).isoformat(timespec="seconds")
        mutates = t.kind is Kind.CHANGE
        if not (self.applying or not mutates):
            runner.record(started, t.display, mutates, None, 0.0)
            return None
        fault = faults.fault_for(t.display, mutates, True)
        t0 = time.monotonic()
        result: Transferred | None = None
        try:
            if fault is None or fault.when == "after":
                result = run_transfer(t, self.runner_of, self.say)
        except KvmopsError:
            runner.record(started, t.display, mutates, 1, time.monotonic() - t0)
            raise
        if fault is not None:
            runner.record(started, t.display, mutates, faults.FAULT_EXIT, time.monotonic() - t0)
            raise CommandFailed(runner.host, (t.display,), faults.FAULT_EXIT, fault.why)
        runner.record(started, t.display, mutates, 0, time.monotonic() - t0)
        assert result is not None
        self.transferred.append(result)
        return result


def execute_all(host: Host, plans: Sequence[Plan], given: Confirmed = frozenset(),
                progress: Progress | None = None) -> list[str]:
    """Several plans of one run: all confirmations checked first, then each executed."""
    if host.apply:
        require_confirmed(plans, given)
    ex = Executor(host, progress)
    return [line for plan in plans for line in ex.execute(plan, given)]
