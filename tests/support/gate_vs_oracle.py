"""The product's safety gate and the tests' oracle on the same run, side by side.

:func:`gate` judges the plans of one run as the executor does in plan mode (every plan in
order, one :class:`~kvmops.safety.rules.RunState` for the run, a phase's hold judged first and
its disk's places known to the classifier), with the world's facts. :func:`oracle` asks
:mod:`tests.support.plan_safety`. :func:`compare` puts both verdicts side by side: where each
refuses first (the executor stops at the first refused plan; within it the first refused step
is what a user sees) and which rules it names there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kvmops.executor import Hold as ExecHold
from kvmops.executor import Procedure
from kvmops.plan import Plan
from kvmops.safety.effects import Where, effects
from kvmops.safety.rules import Context, RunState, judge, judge_hold
from tests.support import plan_safety
from tests.support.random_facts import SITE, VG_NAME, World

HOST = SITE.name

Spot = tuple[int, int]  # (plan, step): step 0 is the plan's hold


@dataclass(frozen=True)
class Found:
    """A refusal (gate) or a broken rule (oracle): where, which rule, why."""

    plan: int
    step: int
    rule: str
    why: str


@dataclass(frozen=True)
class Run:
    """The plans of one run and the disk each phase holds (``(VG/LV, write)`` or None)."""

    plans: tuple[Plan, ...]
    holds: tuple[tuple[str, bool] | None, ...] = ()
    label: str = ""

    def hold(self, index: int) -> tuple[str, bool] | None:
        return self.holds[index] if index < len(self.holds) else None



def _placeholders(hold: tuple[str, bool] | None) -> dict[str, str]:
    return ExecHold(lv=hold[0], write=hold[1]).placeholders(VG_NAME) if hold else {}


def gate(world: World, run: Run) -> list[Found]:
    """Every refusal of kvmops' gate, plan by plan, as the executor walks the run."""
    facts, state, out = world.facts, RunState(), []
    for index, plan in enumerate(run.plans):
        hold = run.hold(index)
        held = _placeholders(hold)
        if hold is not None:
            out += [Found(index, 0, r.rule, r.why) for r in judge_hold(hold[0], hold[1], facts, state, HOST)]
        ctx = Context(facts={HOST: facts}, held={HOST: held},
                      writable=frozenset({hold[0]}) if hold and hold[1] else frozenset())
        where = Where(HOST, facts.site.vg, facts.lv_size, held)
        out += [Found(index, r.step, r.rule, r.why) for r in judge(effects(plan.steps, where), ctx, state)]
    return out


def oracle(world: World, run: Run) -> tuple[list[plan_safety.Effect], list[Found]]:
    holds = [plan_safety.Hold(h[0], h[1], tuple(_placeholders(h))) if h else None
             for h in (run.hold(i) for i in range(len(run.plans)))]
    seen, broken = plan_safety.judge(world, run.plans, holds)
    return seen, [Found(v.plan, v.step, v.rule, v.why) for v in broken]


@dataclass(frozen=True)
class Comparison:
    """Both verdicts of one run; ``first``: where each refuses first (None: it accepts)."""

    run: Run
    effects: tuple[plan_safety.Effect, ...]
    gate: tuple[Found, ...]
    oracle: tuple[Found, ...]

    @staticmethod
    def _first(found: Sequence[Found]) -> Spot | None:
        return min(((f.plan, f.step) for f in found), default=None)

    @property
    def gate_first(self) -> Spot | None:
        return self._first(self.gate)

    @property
    def oracle_first(self) -> Spot | None:
        return self._first(self.oracle)

    def rules_at(self, found: Sequence[Found], spot: Spot | None) -> frozenset[str]:
        return frozenset(f.rule for f in found if (f.plan, f.step) == spot)

    @property
    def let_through(self) -> bool:
        """(a) broken: the gate accepts a run the oracle forbids."""
        return not self.gate and bool(self.oracle)

    @property
    def missed_first(self) -> bool:
        """(b) broken at the step: the oracle forbids a step before (or without) any refusal of the gate."""
        o, g = self.oracle_first, self.gate_first
        return o is not None and (g is None or g > o)

    @property
    def over_refused(self) -> bool:
        """The gate refuses a step before any step the oracle forbids."""
        o, g = self.oracle_first, self.gate_first
        return g is not None and (o is None or g < o)

    def explain(self) -> str:
        lines = [f"run {self.run.label}: gate first {self.gate_first}, oracle first {self.oracle_first}"]
        for i, plan in enumerate(self.run.plans):
            lines.append(f"  plan {i} {plan.title!r} hold={self.run.hold(i)}")
            lines += [f"    {j}. {s.text()[:300]}  [target {s.target!r}]" for j, s in enumerate(plan.steps, 1)]
        lines += [f"  gate:   {f.plan}.{f.step} [{f.rule}] {f.why[:300]}" for f in self.gate]
        lines += [f"  oracle: {f.plan}.{f.step} [{f.rule}] {f.why[:300]}" for f in self.oracle]
        return "\n".join(lines)


def compare(world: World, run: Run) -> Comparison:
    seen, broken = oracle(world, run)
    return Comparison(run, tuple(seen), tuple(gate(world, run)), tuple(broken))


def run_of(made: Plan | Sequence[Plan] | Procedure) -> Run:
    """A plan, the plans of one run, or a procedure's previews with its phases' holds."""
    if isinstance(made, Plan):
        return Run((made,))
    if isinstance(made, Procedure):
        holds = tuple((ph.hold.source, ph.hold.write) if ph.hold is not None else None for ph in made.phases)
        return Run(tuple(made.preview), holds)
    return Run(tuple(made))


def checked(world: World, made: Plan | Sequence[Plan] | Procedure) -> list[plan_safety.Effect] | None:
    """What kvmops does with what it planned: the gate judges it first; a refused run is None
    (nothing of it runs). An accepted run must keep every rule of the oracle; its effects are
    returned. A disagreement that is one of the gate's known defects
    (:mod:`tests.support.gate_defects`) counts as refused: it is tested where it is recorded."""
    from tests.support.gate_defects import known_defect

    c = compare(world, run_of(made))
    if c.gate or known_defect(c):
        return None
    assert not c.oracle, "the gate let through what the oracle forbids:\n" + c.explain()
    return list(c.effects)
