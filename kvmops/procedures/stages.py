"""Procedures over several hosts: stages, each planned from fresh facts of every host just
before it runs, executed by the one executor of the host it changes.

A :class:`Staged` procedure is previewed up front (each stage planned from the facts read at
the start, later ones as the earlier would leave the hosts) and shown before anything runs.
Applying checks every confirmation of every stage first (:func:`require_confirmed`) and takes
each host's locks of every guest its stages change, held until the last stage ends; then each
stage is planned again from fresh facts (``fresh()``) and run. A stage planned again that needs
a confirmation the preview did not ask for is refused (the hosts changed meanwhile).

After a stage failed (or was interrupted), the later stages are skipped except the ``always``
ones (cleanup, e.g. removing a temporary snapshot, planned from fresh facts too) and the
``on_failure`` ones (e.g. starting the source guest again); then the first error is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Generic, TypeVar

from kvmops.errors import ConfirmationRequired
from kvmops.executor import Confirmed, Executor, require_confirmed
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.plan import Plan, Progress

if TYPE_CHECKING:
    from kvmops.transfer.result import Transferred

C = TypeVar("C")


@dataclass(frozen=True)
class Ran:
    """What a run of stages did: one line per step, and every transfer's result (its sha256
    and each end's, bytes, seconds), in order."""

    lines: list[str]
    transferred: tuple[Transferred, ...]


@dataclass(frozen=True)
class Stage(Generic[C]):
    """A part of a procedure that changes one host (``on``: its side, e.g. ``source``)."""

    title: str
    on: str
    plan: Callable[[C], Plan]
    always: bool = False  # runs also after an earlier stage failed (cleanup)
    on_failure: bool = False  # runs only after an earlier stage failed
    # reads its plan needs besides the facts (apply only, after the fresh facts, before planning):
    # e.g. a disk's sha256 and a signature that a command's stdin must hold
    prepare: Callable[[C], C] | None = None


@dataclass
class Staged(Generic[C]):
    """Stages with their preview plans (shown before anything runs)."""

    title: str
    stages: list[Stage[C]] = field(default_factory=list)
    preview: list[Plan] = field(default_factory=list)
    # the facts of one side in a context (the safety gate judges each stage's plan against them);
    # None, or None for a side: that side's executor reads them (a backup place has none)
    facts_of: Callable[[C, str], HostFacts | None] | None = None

    def add(self, stage: Stage[C], preview: Plan) -> Staged[C]:
        self.stages.append(stage)
        self.preview.append(preview)
        return self

    def render(self) -> str:
        """Every stage's plan, with the side it runs on."""
        parts = []
        for stage, plan in zip(self.stages, self.preview, strict=True):
            when = " (also after a failure: cleanup)" if stage.always else ""
            when = " (ONLY if a stage above failed)" if stage.on_failure else when
            parts.append(f"## {stage.title} [on the {stage.on}]{when}\n{plan.render()}")
        return "\n\n".join(parts)

    def markdown(self) -> str:
        """The rendered stages as a code block (a notebook shows it as such)."""
        return "```sh\n" + self.render() + "\n```"


def executors(hosts: Mapping[str, Host], progress: Progress | None = None,
              places: Mapping[str, str] | None = None,
              repos: Mapping[str, str] | None = None) -> dict[str, Executor]:
    """One executor per side; each knows every host (a transfer's endpoints); ``places``: the
    sides that are backup places, with their folders; ``repos``: the sides whose host writes
    into a backup engine's repository (with its URL; the host itself is judged on its facts)."""
    places = places or {}
    peers = {h.name: h for h in hosts.values()}
    by_name = {hosts[side].name: folder for side, folder in {**(repos or {}), **places}.items()}
    out = {side: Executor(host, progress, peers=peers, places=by_name, place=side in places)
           for side, host in hosts.items()}
    run = next(iter(out.values())).run if out else None
    for e in out.values():  # one run: what one side did counts for the others (an LV made on the target)
        e.run = run or e.run
    return out


class _Run(Generic[C]):
    def __init__(self, staged: Staged[C], ex: Mapping[str, Executor], fresh: Callable[[], C],
                 given: Confirmed) -> None:
        self.staged, self.ex, self.fresh, self.given = staged, ex, fresh, given
        self.lines: list[str] = []
        self.error: BaseException | None = None

    @property
    def applying(self) -> bool:
        return any(e.applying for e in self.ex.values())

    def facts(self, ctx: C, side: str) -> HostFacts | None:
        return self.staged.facts_of(ctx, side) if self.staged.facts_of is not None else None

    def stage(self, stage: Stage[C], preview: Plan) -> None:
        if (self.error is None and stage.on_failure) or (self.error is not None and not
                                                         (stage.always or stage.on_failure)):
            return
        if not self.applying:
            if not stage.on_failure:
                facts = self.facts(self.first, stage.on) if self.staged.facts_of else None
                lines = self.ex[stage.on].execute(preview, self.given, facts=facts)
                self.lines += [f"[{stage.on}] {ln}" for ln in lines]
            return
        try:
            ctx = self.fresh()
            if stage.prepare is not None:
                ctx = stage.prepare(ctx)
            plan = self._planned(stage, ctx)
            lines = self.ex[stage.on].execute(plan, self.given, facts=self.facts(ctx, stage.on))
            self.lines += [f"[{stage.on}] {ln}" for ln in lines]
        except BaseException as exc:  # an interrupt too: the cleanup stages still run, then it is raised
            if self.error is None:
                self.error = exc
            else:
                self.error.add_note(f"then, on the way out, {stage.title} failed too: {exc}")

    @cached_property
    def first(self) -> C:
        """The context the previews were planned from (read once, for plan mode)."""
        return self.fresh()

    def _planned(self, stage: Stage[C], ctx: C) -> Plan:
        plan = stage.plan(ctx)
        new = [t for t in plan.targets if t not in self.given]
        if new:
            raise ConfirmationRequired(
                f"{stage.title}: planned again from the hosts as they are now, it needs confirm={new[0]!r}, "
                "which the plan shown before did not ask for (a host changed meanwhile); nothing of this "
                "stage was changed. Look at the hosts and run again")
        return plan


def run_staged(staged: Staged[C], ex: Mapping[str, Executor], fresh: Callable[[], C],
               given: Confirmed = frozenset()) -> list[str]:
    """Run the stages (apply) or walk their previews (plan mode); one line per step."""
    run = _Run(staged, ex, fresh, given)
    if run.applying:
        require_confirmed(staged.preview, given)
    with ExitStack() as held:  # each side's locks, for every stage it runs, taken before the first change
        for side, e in ex.items():
            held.enter_context(e.locked(*(p for s, p in zip(staged.stages, staged.preview, strict=True)
                                          if s.on == side)))
        for stage, preview in zip(staged.stages, staged.preview, strict=True):
            run.stage(stage, preview)
    if run.error is not None:
        raise run.error
    return run.lines


def run_on(hosts: Mapping[str, Host], staged: Staged[C], fresh: Callable[[Mapping[str, Executor]], C],
           given: Confirmed = frozenset(), progress: Progress | None = None,
           places: Mapping[str, str] | None = None, repos: Mapping[str, str] | None = None) -> Ran:
    """:func:`run_staged` on one executor per side; ``fresh`` may read the executors' results.
    ``places``: the sides that are backup places, with the folder the run may write in;
    ``repos``: the sides that write into a backup engine's repository, with its URL."""
    modes = {h.apply for h in hosts.values()}
    if len(modes) != 1:
        from kvmops.errors import KvmopsError

        raise KvmopsError("every host of a run must be opened in the same mode (apply, or plan only)")
    ex = executors(hosts, progress, places, repos)
    lines = run_staged(staged, ex, lambda: fresh(ex), given)
    return Ran(lines, tuple(t for e in ex.values() for t in e.transferred))
