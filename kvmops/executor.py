"""The one executor: every plan, in plan mode and in apply mode, runs through :class:`Executor`.

- **The safety gate** (:mod:`kvmops.safety`) judges every plan against the facts before its
  first step, in plan mode too: a plan with a refused step does not start, whoever made it.
  Its facts are the ones the plan was made from, or read afresh; never none.
- **Locks**: before the first change of an applied plan, the run takes the lock of every guest
  it changes (:mod:`kvmops.lock`), held until the plan (or procedure) ends.
- **Commands** go to the host's runner (recorded, secrets masked, fault-injectable); in plan
  mode the runner records a change without executing it.
- **libvirt calls** (:class:`~kvmops.plan.Call`) are recorded in the same command log with
  their ``virsh`` display and are fault-injectable like commands; in plan mode a changing call
  is recorded as planned, never made.
- **Waits** run after changes in apply mode (:mod:`kvmops.waits`); plan mode lists them.
- **Data transfers** (:class:`~kvmops.plan.Transfer`) are recorded like a command,
  fault-injectable before and after, planned-only in plan mode; their endpoints' hosts are the
  executor's own and its ``peers``.
- **Held disks**: a phase with a :class:`Hold` is planned and run while the executor holds
  that disk (attached, its root mounted); consecutive phases share it; it is released on
  every path out.
- Reads after the first change of a plan are checks of that change: plan mode lists them
  ("planned check"), since what they would read does not exist yet.

Confirmations are checked for every destructive step of every plan of a run *before* the
first change (:func:`require_confirmed`); a :class:`Procedure` plans each later phase again
from fresh facts just before it runs and refuses a destructive target nobody confirmed.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from kvmops.cmd import Cmd, Kind
from kvmops.errors import CommandFailed, ConfirmationRequired, KvmopsError, SafetyError
from kvmops.facts import read_facts
from kvmops.facts.disk import open_disk
from kvmops.facts.mount import image_root
from kvmops.host import Host
from kvmops.hostfacts import Held, HostFacts, Wanted
from kvmops.images.disk import Disk
from kvmops.images.imagefs import PLACEHOLDER
from kvmops.images.mount import RootFs
from kvmops.images.partitions import lv_mapper_path
from kvmops.lock import RunLocks, lock_keys
from kvmops.plan import Call, Plan, Progress, Step, Transfer, Wait
from kvmops.progress import printer
from kvmops.runners import faults
from kvmops.runners.base import Runner
from kvmops.runners.transfer import run_transfer
from kvmops.safety.effects import Effect, Where, effects
from kvmops.safety.rules import Context, Refusal, RunState, judge, judge_hold
from kvmops.transfer.result import Transferred
from kvmops.virt import Virt
from kvmops.waits import wait

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


class Refused(SafetyError):
    """The safety gate refused a plan before its first step: every refused step, its rule and
    the way out."""

    def __init__(self, title: str, refusals: Sequence[Refusal]) -> None:
        self.refusals = tuple(refusals)
        lines = "\n".join("  - " + r.render() for r in refusals)
        super().__init__(f"refused by the safety gate, nothing was changed: {title}\n{lines}")


@dataclass(frozen=True)
class Hold:
    """A disk a phase holds while it is planned and run: an LV (``lv="VG/LV"``) mapped with
    kpartx, or an image file on a loop device; its root filesystem mounted when ``root``;
    read-write when ``write``. ``read`` reads what the phase plans from (it gets the runner,
    the attached disk and the mounted root) into ``facts.held.data``.
    """

    lv: str = ""
    image: str = ""
    write: bool = True
    root: bool = False
    read: Callable[[Runner, Disk, RootFs | None], object] | None = None

    @property
    def source(self) -> str:
        return self.lv or self.image

    def placeholders(self, vg: str) -> dict[str, str]:
        """Where a plan previewed before the disk is attached names it (plan mode)."""
        if self.lv:
            return {lv_mapper_path(vg, self.lv.split("/", 1)[1]): self.lv, PLACEHOLDER: self.lv}
        return {"/dev/loopN": self.image, PLACEHOLDER: self.image}


@dataclass(frozen=True)
class Phase:
    """A part of a procedure that is planned from fresh facts just before it runs."""

    title: str
    plan: Callable[[HostFacts], Plan]
    wanted: Wanted = field(default_factory=Wanted)
    hold: Hold | None = None


@dataclass
class Procedure:
    """Phases with their preview: each phase planned up front from the facts read at the
    start (later phases as the earlier ones would leave the host), shown before anything runs.
    ``facts``: the facts the previews were planned from (the gate judges them in plan mode).
    """

    title: str
    phases: list[Phase] = field(default_factory=list)
    preview: list[Plan] = field(default_factory=list)
    facts: HostFacts | None = None

    def add(self, phase: Phase, preview: Plan) -> Procedure:
        self.phases.append(phase)
        self.preview.append(preview)
        return self


class Executor:
    """Runs plans on a host: applies them when ``host.apply``, else walks them as a plan.

    ``peers``: the other hosts of a run (by name: a transfer's endpoints); ``places``: hosts
    that hold backup places (name -> the folder the run may write in); ``place``: this
    executor's host is only a backup place (no host facts are read of it).
    """

    def __init__(self, host: Host, progress: Progress | None = None, *, peers: Mapping[str, Host] | None = None,
                 places: Mapping[str, str] | None = None, place: bool = False) -> None:
        self.host = host
        self.say: Progress = progress or printer()
        self.peers: Mapping[str, Host] = peers or {}
        self.places: Mapping[str, str] = places or {}
        self.transferred: list[Transferred] = []  # the results of the transfers run, in order
        self.ran: list[Plan] = []  # the phases' plans as they ran (planned from fresh facts)
        self.run = RunState()  # what the earlier plans of this executor's run did
        self.held: dict[str, str] = {}  # device or mount point -> the source of a disk held now
        self.writable: frozenset[str] = frozenset()
        self._locks: RunLocks | None = None
        self.is_place = place

    @property
    def applying(self) -> bool:
        return self.host.apply

    # -- plans and procedures -----------------------------------------------------------------

    def execute(self, plan: Plan, given: Confirmed = frozenset(), *, facts: HostFacts | None = None) -> list[str]:
        """Judge ``plan`` (against ``facts``, or facts read now), then run it: one line per step."""
        if self.applying:
            require_confirmed([plan], given)
        judged = self.gate(plan, facts)
        with self.locked(plan):
            lines: list[str] = []
            changed = False
            for i, step in enumerate(plan.steps, 1):
                line, did_change = self._step(i, step, changed)
                changed = changed or did_change
                lines.append(line)
                judged.done(i)
            return lines

    def run_procedure(self, proc: Procedure, given: Confirmed = frozenset()) -> list[str]:
        """Every confirmation first; then each phase planned from fresh facts and executed
        (apply), or each previewed phase walked as a plan (plan mode)."""
        if self.applying:
            require_confirmed(proc.preview, given)
        lines: list[str] = []
        held = [p.hold.source for p in proc.phases if p.hold is not None]
        with self.locked(*proc.preview, holding=held), ExitStack() as holds:
            self._holds = _Holds(self, holds)
            for phase, preview in zip(proc.phases, proc.preview, strict=True):
                if self.applying:
                    lines.extend(self._run_phase(phase, given))
                else:
                    lines.extend(self._walk_phase(phase, preview, proc.facts))
        return lines

    def _run_phase(self, phase: Phase, given: Confirmed) -> list[str]:
        facts = self._holds.enter(phase.hold, phase.wanted)
        plan = phase.plan(facts)
        new = [t for t in plan.targets if t not in given]
        if new:
            raise ConfirmationRequired(
                f"{phase.title}: planned again from the host as it is now, it needs confirm="
                f"{new[0]!r}, which the plan shown before did not ask for (the host changed meanwhile); "
                "nothing of this phase was changed. Look at the host and run again"
            )
        self.ran.append(plan)
        return self.execute(plan, given, facts=facts)

    def _walk_phase(self, phase: Phase, preview: Plan, facts: HostFacts | None) -> list[str]:
        hold = phase.hold
        facts = facts or read_facts(self.host, phase.wanted | wanted_for(preview))
        self.held = hold.placeholders(facts.site.vg) if hold else {}
        self.writable = frozenset({hold.source}) if hold and hold.write else frozenset()
        if hold is not None:
            self._judge_hold(hold, facts)
        try:
            return self.execute(preview, facts=facts)
        finally:
            self.held, self.writable = {}, frozenset()

    # -- the gate and the locks -----------------------------------------------------------------

    def gate(self, plan: Plan, facts: HostFacts | None) -> _Judged:
        """Refuse ``plan`` before its first step when a rule forbids one of its steps; what it
        returns keeps the run's state as the steps get done (a failed step's effects, and those
        after it, never count as done)."""
        if self.is_place:
            ctx = Context(facts={}, places=self.places)
            where = Where(self.host.name, "", lambda _p: None, {})
        else:
            facts = facts or read_facts(self.host, wanted_for(plan))
            ctx = Context(facts={self.host.name: facts, **self._peer_facts(plan)}, held={self.host.name: self.held},
                          writable=self.writable, places=self.places)
            where = Where(self.host.name, facts.site.vg, facts.lv_size, self.held)
        found = effects(plan.steps, where)
        refusals = judge(found, ctx, copy.deepcopy(self.run))  # the whole plan, as if every step ran
        if refusals:
            raise Refused(plan.title, refusals)
        return _Judged(self, found, ctx)

    def _peer_facts(self, plan: Plan) -> dict[str, HostFacts]:
        names = {s.effect.target.host for s in plan.steps if isinstance(s.effect, Transfer)}
        return {n: read_facts(self.peers[n]) for n in names
                if n in self.peers and n != self.host.name and n not in self.places}

    def _judge_hold(self, hold: Hold, facts: HostFacts) -> None:
        refusals = judge_hold(hold.source, hold.write, facts, self.run, self.host.name)
        if refusals:
            raise Refused(f"hold {hold.source}", refusals)

    @contextmanager
    def locked(self, *plans: Plan, holding: Sequence[str] = ()) -> Iterator[None]:
        """The locks of the guests ``plans`` change and of the disks a procedure holds
        (``holding``: ``VG/LV`` or an image file), taken before the first change when applying
        (a plan changes nothing) and held until the outermost run ends."""
        changes = [e for p in plans for e in _changes(p, self.host.name)]
        keys = lock_keys(self.host.site, [*changes, *(HoldLock(source) for source in holding)])
        if not self.applying or self.is_place:
            yield
            return
        outer = self._locks is None
        if outer:
            self._locks = RunLocks(self.host.runner, plans[0].title if plans else "kvmops")
        try:
            assert self._locks is not None
            self._locks.take(keys)
            yield
        finally:
            if outer and self._locks is not None:
                self._locks.release()
                self._locks = None

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
            wait(self.host, eff.until, self.say)
        elif isinstance(eff, Transfer):
            self.transfer(eff)

    def call(self, call: Call) -> None:
        """A libvirt call: recorded like a command, fault-injectable, planned-only in plan mode."""
        self._recorded(call.display, call.kind, lambda: make_call(self.host.virt, call))

    def runner_of(self, name: str) -> Runner:
        """The runner of a transfer endpoint's host: a peer's, or this host's own."""
        if name in self.peers:
            return self.peers[name].runner
        if name == self.host.name:
            return self.host.runner
        raise KvmopsError(f"a transfer names host {name!r}, which this run does not know "
                          f"(known: {', '.join(sorted({self.host.name, *self.peers}))})")

    def transfer(self, t: Transfer) -> None:
        """A data transfer: recorded like a command, fault-injectable before and after,
        planned-only in plan mode; the result is kept in :attr:`transferred`."""
        got: list[Transferred] = []
        self._recorded(t.display, t.kind, lambda: got.append(run_transfer(t, self.runner_of, self.say)))
        self.transferred += got  # only a transfer whose step did not fail counts

    def _recorded(self, display: str, kind: Kind, run: Callable[[], None]) -> None:
        runner = self.host.runner
        started = datetime.now(UTC).isoformat(timespec="seconds")
        mutates = kind is Kind.CHANGE
        executes = self.applying or not mutates
        if not executes:
            runner.record(started, display, mutates, None, 0.0)
            return
        fault = faults.fault_for(display, mutates, executes)
        t0 = time.monotonic()
        try:
            if fault is None or fault.when == "after":
                run()
        except KvmopsError:
            runner.record(started, display, mutates, 1, time.monotonic() - t0)
            raise
        if fault is not None:
            runner.record(started, display, mutates, faults.FAULT_EXIT, time.monotonic() - t0)
            raise CommandFailed(runner.host, (display,), faults.FAULT_EXIT, fault.why)
        runner.record(started, display, mutates, 0, time.monotonic() - t0)


@dataclass(frozen=True)
class HoldLock:
    """A disk a procedure holds, as :func:`~kvmops.lock.lock_keys` takes it: the lock of the
    LV's guest, or of the image file."""

    obj: str
    action: str = "hold"


class _Judged:
    """A plan the gate let through: each step's effects join the run's state once it is done."""

    def __init__(self, ex: Executor, found: list[Effect], ctx: Context) -> None:
        self.ex, self.found, self.ctx = ex, found, ctx

    def done(self, index: int) -> None:
        judge([e for e in self.found if e.index == index], self.ctx, self.ex.run)  # judged already: only the state


class _Holds:
    """The disks a procedure holds: attachments and mounts shared by consecutive phases."""

    def __init__(self, ex: Executor, stack: ExitStack) -> None:
        self.ex, self.outer = ex, stack
        self.attached: tuple[tuple[str, bool], Disk, ExitStack] | None = None
        self.mounted: tuple[RootFs, ExitStack] | None = None
        stack.callback(self.release)

    def enter(self, hold: Hold | None, wanted: Wanted) -> HostFacts:
        """Fresh facts for a phase, holding ``hold``'s disk (and nothing else)."""
        if hold is None or (self.attached and self.attached[0] != (hold.source, hold.write)):
            self.release()
        if hold is None:
            self.ex.held, self.ex.writable = {}, frozenset()
            return read_facts(self.ex.host, wanted)
        facts = read_facts(self.ex.host, wanted)
        if self.attached is None:
            self.ex._judge_hold(hold, facts)
            self._attach(hold, facts)
        assert self.attached is not None
        disk = self.attached[1]
        root = self._root(hold, disk)
        data = hold.read(self.ex.host.runner, disk, root) if hold.read else None
        self.ex.held = {disk.device: hold.source, **{p.node: hold.source for p in disk.partitions}}
        if root is not None:
            self.ex.held[root.mountpoint] = hold.source
        self.ex.writable = frozenset({hold.source}) if hold.write else frozenset()
        return replace(facts, held=Held(hold.source, hold.write, disk, root, data))

    def _attach(self, hold: Hold, facts: HostFacts) -> None:
        stack = ExitStack()
        disk = stack.enter_context(open_disk(self.ex.host.runner, facts, image=hold.image or None,
                                             lv=hold.lv or None, write=hold.write))
        self.attached = ((hold.source, hold.write), disk, stack)

    def _root(self, hold: Hold, disk: Disk) -> RootFs | None:
        if not hold.root:
            self._unmount()
            return None
        if self.mounted is None:
            stack = ExitStack()
            root = stack.enter_context(image_root(self.ex.host.runner, disk, write=hold.write))
            self.mounted = (root, stack)
        return self.mounted[0]

    def _unmount(self) -> None:
        if self.mounted is not None:
            _, stack = self.mounted
            self.mounted = None
            stack.close()

    def release(self) -> None:
        self._unmount()
        if self.attached is not None:
            stack = self.attached[2]
            self.attached = None
            stack.close()
        self.ex.held, self.ex.writable = {}, frozenset()



def _changes(plan: Plan, host: str) -> list[Effect]:
    where = Where(host, "", lambda _p: None, {})
    return [e for e in effects(plan.steps, where) if e.host == host]


def wanted_for(plan: Plan) -> Wanted:
    """The facts the gate needs to judge ``plan``: the network's for bridge changes, the kept
    files a plan writes (to compare them)."""
    net = any(isinstance(s.effect, Cmd) and s.effect.argv[0] == "nmcli" and s.mutates for s in plan.steps)
    files = tuple(s.effect.argv[-1] for s in plan.steps
                  if isinstance(s.effect, Cmd) and s.effect.argv[:2] == ("install", "-D") and s.mutates)
    return Wanted(net=net, files=files)


def make_call(virt: Virt, call: Call) -> None:
    """The libvirt adapter's method for a call."""
    v, name = call.verb, call.guest
    if v == "define":
        virt.define(call.xml, name)
    elif v == "autostart":
        virt.set_autostart(name, call.flag)
    elif v == "eject":
        virt.eject(name, call.xml)
    elif v == "blockresize":
        virt.block_resize(name, call.device, call.size)
    else:
        {"start": virt.start, "shutdown": virt.shutdown, "destroy": virt.destroy, "undefine": virt.undefine}[v](name)


def execute_all(host: Host, plans: Sequence[Plan], given: Confirmed = frozenset(),
                progress: Progress | None = None, facts: HostFacts | None = None) -> list[str]:
    """Several plans of one run: all confirmations checked first, then each executed (judged
    against ``facts``, the ones they were planned from, else facts read now)."""
    if host.apply:
        require_confirmed(plans, given)
    ex = Executor(host, progress)
    with ex.locked(*plans):
        return [line for plan in plans for line in ex.execute(plan, given, facts=facts)]
