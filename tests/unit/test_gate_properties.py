"""The safety gate (:mod:`kvmops.safety`: effects, then the rules, with the world's facts)
against the tests' own oracle (tests/support/plan_safety.py, independent of it), both ways:

(a) nothing the gate lets through breaks the oracle's rules;
(b) everything the oracle forbids, the gate refuses: the first step the oracle forbids is the
    first step the gate refuses (the executor stops there), and the gate refuses no earlier one.

Over random worlds (tests/support/random_facts.py: open LVs of stopped guests, disks shared
between guests, merges, overflowed snapshots, guests in every state, bridges with guest
ports) and two kinds of runs: random plans of known changing steps chosen from the world,
with clean and hostile domain XML, with and without their confirm targets
(tests/support/random_plans.py), and the runs kvmops' own operations and procedures plan
(tests/support/real_runs.py). A disagreement fails the test unless it is one of the gate's
known defects (tests/support/gate_defects.py; each has a minimal example in
tests/unit/test_gate_findings.py).

Each property counts, per rule, the cases in which both refused for it at the same step and
the cases in which both accepted a run that the rule had to judge, and asserts a minimum of
each, so that it cannot pass on one side alone. ``KVMOPS_PROPERTY_PROFILE=ci`` runs 10,000
cases each (tests/support/properties.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import given, settings

from kvmops.safety.rules import RULE_IDS
from tests.support import gate_defects, plan_safety, random_plans, real_runs, xml_oracle
from tests.support.gate_vs_oracle import Comparison, Run, compare
from tests.support.plan_safety import Effect
from tests.support.properties import CI_CASES, cases, profile
from tests.support.random_facts import GUESTS, NEW_GUESTS, SITE, Dice, World, dice, worlds
from tests.support.random_xml import GAPS, definition

LV = ("create", "grow", "shrink", "remove", "rename", "snapshot", "merge", "merge-into", "overwrite",
      "resume-merge-poll", "activate", "tag")
GOVERNS: dict[str, Callable[[Effect], bool]] = {
    "known": lambda e: True,
    "site-vg": lambda e: e.action in LV,
    "guest-lv": lambda e: e.action in LV,
    "lv-exists": lambda e: e.action in LV,
    "lv-free": lambda e: e.action in plan_safety.LV_CHANGES,
    "lvremove": lambda e: e.action == "remove",
    "merge": lambda e: e.action in ("merge", "snapshot", "resume-merge-poll"),
    "held-disk": lambda e: e.action == "held-write",
    "start-free": lambda e: e.action == "start",
    "guest-state": lambda e: e.action in plan_safety.GUEST_ACTIONS,
    "define-disks": lambda e: e.action == "define",
    "xml-policy": lambda e: e.action == "define",
    "bridge": lambda e: e.action in ("delete-bridge", "up"),
    "files": lambda e: e.action in plan_safety.FILE_ACTIONS,
    "confirm": lambda e: e.target is not None,
}
"""Which effects a rule judges (an accepted run with one of them counts as accepted for it)."""


def run(n: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(max_examples=n, deadline=None)


@dataclass
class Tally:
    """What a property saw: per rule the agreeing refusals and acceptances; the known defects."""

    refused: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    defects: Counter[str] = field(default_factory=Counter)
    rule_differs: Counter[tuple[str, str]] = field(default_factory=Counter)
    cases: int = 0

    def add(self, world: World, c: Comparison) -> None:
        """Fails on an unexplained disagreement; else counts the case."""
        self.cases += 1
        if gate_defects.disagreement(c):
            defect = gate_defects.known_defect(c)
            assert defect is not None, "the gate and the oracle disagree:\n" + c.explain()
            self.defects[defect] += 1
            return
        if c.oracle_first is None:
            self._accepted(world, c)
            return
        oracle, gate = c.rules_at(c.oracle, c.oracle_first), c.rules_at(c.gate, c.gate_first)
        self.refused.update(oracle & gate)
        for rule in oracle ^ gate:
            self.rule_differs[("oracle" if rule in oracle else "gate", rule)] += 1

    def _accepted(self, world: World, c: Comparison) -> None:
        rules = {r for r, judges in GOVERNS.items() for e in c.effects if judges(e)}
        rules |= {"lv-free"} if any(c.run.holds) else set()
        told = {(e.plan, e.obj) for e in c.effects if e.action == "blockresize"}
        users = {lv: g for g, lvs in world.disks_of.items() if world.domains.get(g) for lv in lvs}
        if any(e.action == "grow" and (e.plan, users.get(e.obj.split("/")[-1])) in told for e in c.effects):
            rules.add("grow-running")
        self.accepted.update(rules)

    def report(self, title: str) -> str:
        rows = [f"{title}: {self.cases} cases; per rule refused by both / accepted by both"]
        rows += [f"  {r:13} {self.refused[r]:6} {self.accepted[r]:6}" for r in sorted(RULE_IDS)]
        rows += [f"  known gate defect {d}: {n}" for d, n in sorted(self.defects.items())]
        rows += [f"  named only by the {who}: {rule} ({n})" for (who, rule), n in sorted(self.rule_differs.items())]
        return "\n".join(rows)

    def assert_least(self, refused: dict[str, int], accepted: dict[str, int]) -> None:
        low = {f"refused {r}": f"{self.refused[r]} < {n}" for r, n in refused.items() if self.refused[r] < n}
        low |= {f"accepted {r}": f"{self.accepted[r]} < {n}" for r, n in accepted.items() if self.accepted[r] < n}
        assert not low, f"rules judged too rarely (the property could pass on one side alone): {low}"


def scaled(least: dict[str, int], n: int) -> dict[str, int]:
    """Minimum counts set for 1,000 cases, for ``n`` cases (at least 1 each)."""
    return {rule: max(1, count * n // 1000) for rule, count in least.items()}


def test_the_oracle_judges_by_the_gates_rules() -> None:
    """Both name rules by the same ids: refusals can be compared rule by rule."""
    assert set(plan_safety.RULES) == set(RULE_IDS)


# -- the oracle's XML policy against how the definitions were made ---------------------------


def test_the_oracles_xml_policy_refuses_every_hostile_kind_and_passes_every_clean_definition() -> None:
    n = cases(300, 2000)
    seen: Counter[str] = Counter()

    @run(n)
    @given(d=dice())
    def prop(d: Dice) -> None:
        guest = d.pick((*GUESTS, *NEW_GUESTS))
        made = definition(d, SITE, guest, [g for g in GUESTS if g != guest], "root", "data")
        found = xml_oracle.violations(made.xml, SITE, guest)
        assert bool(found) == bool(made.hostile), (made.hostile, made.clean, found, made.xml)
        seen.update(made.hostile or ["clean"])

    prop()
    assert seen["clean"] >= n // 4 and len(seen) >= (30 if profile() == "ci" else 20), seen
    assert set(GAPS) <= set(seen) or profile() != "ci", seen


# -- random plans ------------------------------------------------------------------------------

RANDOM_REFUSED = {"known": 14, "site-vg": 25, "guest-lv": 28, "lv-exists": 38, "lv-free": 26, "lvremove": 5,
                  "merge": 15, "grow-running": 12, "held-disk": 7, "start-free": 3, "guest-state": 45,
                  "define-disks": 2, "xml-policy": 37, "bridge": 3, "files": 9, "confirm": 30}
RANDOM_ACCEPTED = {"known": 29, "site-vg": 17, "guest-lv": 17, "lv-exists": 17, "lv-free": 10, "lvremove": 1,
                   "merge": 3, "grow-running": 1, "held-disk": 3, "start-free": 2, "guest-state": 12,
                   "define-disks": 5, "xml-policy": 5, "bridge": 1, "files": 2, "confirm": 9}
"""Per 1,000 cases: about a third of what a CI run (10,000 new random cases) sees."""


def test_the_gate_and_the_oracle_agree_on_random_plans() -> None:
    n = cases(500)
    tally = Tally()

    @run(n)
    @given(world=worlds(), d=dice())
    def prop(world: World, d: Dice) -> None:
        tally.add(world, compare(world, random_plans.run(world, d)))

    prop()
    print(tally.report("random plans"))  # shown with -s
    tally.assert_least(scaled(RANDOM_REFUSED, n), scaled(RANDOM_ACCEPTED, n))


# -- kvmops' own operations ---------------------------------------------------------------------

REAL_REFUSED = {"start-free": 8, "xml-policy": 8}
"""What kvmops' planners leave to the gate (they check the other rules themselves first; a grow of a
running guest's disk comes with its blockresize)."""
REAL_ACCEPTED = {"known": 240, "site-vg": 110, "guest-lv": 110, "lv-exists": 110, "lv-free": 70, "lvremove": 8,
                 "merge": 5, "start-free": 30, "guest-state": 90, "define-disks": 35, "xml-policy": 35, "bridge": 20,
                 "files": 70, "confirm": 90}


def test_the_gate_and_the_oracle_agree_on_what_kvmops_plans() -> None:
    n = cases(500, CI_CASES + CI_CASES // 25)  # a few draws find no operation its planner accepts
    tally = Tally()
    ran: Counter[str] = Counter()

    @run(n)
    @given(world=worlds(), d=dice())
    def prop(world: World, d: Dice) -> None:
        op, made = real_runs.run(world, d)
        if made is None:
            return
        c = compare(world, made)
        tally.add(world, c)
        ran[f"{op} {'refused' if c.gate else 'accepted'}"] += 1

    prop()
    print(tally.report("kvmops' operations"), "\n ", dict(sorted(ran.items())))  # shown with -s
    assert tally.cases >= (CI_CASES if profile() == "ci" else n * 9 // 10), tally.cases
    tally.assert_least(scaled(REAL_REFUSED, n), scaled(REAL_ACCEPTED, n))
    low = [op for op in real_runs.NAMES if ran[f"{op} accepted"] < max(1, n // 200)]
    assert not low, f"operations whose runs the gate accepted too rarely: {low}; {ran}"


def test_a_run_is_compared_step_by_step() -> None:
    """The comparison's own logic: the first refusals and what counts as a disagreement."""
    from kvmops.plan import Call, Plan, Step
    from tests.support.random_facts import build_world

    world = build_world(Dice(bytes(160)))  # every first option: web1 shut off, all LVs closed
    start = Run((Plan("p", [Step("start", Call("start", "web1")), Step("start", Call("start", "nobody"))]),))
    c = compare(world, start)
    assert (c.gate_first, c.oracle_first) == ((0, 2), (0, 2))
    assert c.rules_at(c.gate, (0, 2)) == c.rules_at(c.oracle, (0, 2)) == {"guest-state"}
    assert gate_defects.disagreement(c) is None
