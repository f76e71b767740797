"""Plans: ordered steps with a one-line reason each, shown before anything runs.

An operation compares facts with the wanted state and returns a :class:`Plan`. Steps whose
goal is already met are no-ops that say why, so re-running after a failure converges.
Steps are computed from the state *before* the plan; a plan says so where it matters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kvmops.cmd import Cmd
from kvmops.errors import ConfirmationRequired, KvmopsError

if TYPE_CHECKING:
    from kvmops.host import Host

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Action:
    """A step that is a call at the edge (libvirt, a file write, a wait), not a command."""

    describe: str
    run: Callable[[Host, Progress], Any]
    mutates: bool = True


@dataclass(frozen=True)
class Step:
    """One step: a command or an action with the reason for it; neither means a no-op.

    ``target`` marks a destructive step: it runs only with ``confirm == target``.
    """

    reason: str
    cmd: Cmd | None = None
    action: Action | None = None
    target: str | None = None

    @property
    def noop(self) -> bool:
        return self.cmd is None and self.action is None

    @property
    def mutates(self) -> bool:
        if self.cmd is not None:
            return self.cmd.mutates
        return self.action is not None and self.action.mutates

    def text(self) -> str:
        if self.cmd is not None:
            return self.cmd.display()
        if self.action is not None:
            return f"# {self.action.describe}"
        return "# nothing to do"


@dataclass
class Plan:
    """What an operation will do, in order."""

    title: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, reason: str, cmd: Cmd | None = None, *, action: Action | None = None,
            target: str | None = None) -> Plan:
        self.steps.append(Step(reason, cmd, action, target))
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

    def check_confirm(self, confirm: str | None) -> None:
        """Refuse before anything runs if a destructive step lacks its exact confirmation."""
        for i, step in enumerate(self.steps, 1):
            if step.target and confirm != step.target:
                got = f"got {confirm!r}" if confirm else "got none"
                raise ConfirmationRequired(
                    f"step {i} ({step.reason}) is destructive: set confirm={step.target!r} "
                    f"to go ahead ({got}); nothing was changed"
                )

    def apply(self, host: Host, *, confirm: str | None = None,
              progress: Progress | None = None) -> list[str]:
        """Run the steps in order. Mutating steps run only when ``host.apply`` is true.

        Returns one line per step saying what happened. A failing step raises
        :class:`StepFailed` naming the step; the steps before it stay done.
        """
        say = progress or print
        if host.apply:
            self.check_confirm(confirm)
        done: list[str] = []
        for i, step in enumerate(self.steps, 1):
            done.append(self._run_step(host, i, step, say))
        return done

    def _run_step(self, host: Host, i: int, step: Step, say: Progress) -> str:
        if step.noop:
            return f"{i}. ok (nothing to do): {step.reason}"
        if step.mutates and not host.apply:
            if step.cmd is not None:
                host.runner.run(step.cmd)  # recorded, not executed
            return f"{i}. planned: {step.reason}"
        say(f"step {i}: {step.reason}")
        try:
            if step.cmd is not None:
                host.runner.run(step.cmd, on_line=say if step.cmd.timeout is None else None)
            elif step.action is not None:
                step.action.run(host, say)
        except KvmopsError as exc:
            raise StepFailed(i, step, exc) from exc
        return f"{i}. done: {step.reason}"


class StepFailed(KvmopsError):
    """A plan step failed; names the step and keeps the cause."""

    def __init__(self, index: int, step: Step, cause: KvmopsError) -> None:
        self.index = index
        self.step = step
        self.cause = cause
        super().__init__(f"step {index} failed ({step.reason}): {cause}")
