"""Where kvmops' gate and the tests' oracle disagree for a known reason: the gate defects the
gate properties found (tests/unit/test_gate_properties.py), each shown by a minimal example in
tests/unit/test_gate_findings.py (marked xfail, strict: once the gate is fixed that test
passes, fails as XPASS, and its entry here goes with the mark).

:func:`known_defect` names the defect that explains a comparison's first disagreement, or
None: an unexplained disagreement fails the properties. Each predicate looks at the step
where the two disagree and asks for the defect's exact shape there, so that it cannot hide
another disagreement.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.support.gate_vs_oracle import Comparison, Spot

DEFECTS: dict[str, str] = {}
"""None known: the ten the properties found first (an XML policy that missed host files, merges
into origins in use, LVs the run made, unknown open state, disks of guests the run started,
merges the run started, holds of removed LVs, the NoCloud seed's empty file, VLAN port
activation, facts the run had changed) are fixed; tests/unit/test_gate_findings.py keeps
their minimal examples as plain tests."""

LET_THROUGH: dict[str, Callable[[Comparison, Spot], bool]] = {}
OVER_REFUSED: dict[str, Callable[[Comparison, Spot], bool]] = {}


def disagreement(c: Comparison) -> str | None:
    """``missed`` (the oracle forbids a step the gate does not refuse, and no earlier one),
    ``over-refused`` (the gate refuses a step the oracle allows, before any it forbids), or None."""
    if c.missed_first:
        return "missed"
    return "over-refused" if c.over_refused else None


def known_defect(c: Comparison) -> str | None:
    """The known defect that explains the first disagreement of ``c`` (None: none does)."""
    kind = disagreement(c)
    if kind == "missed":
        spot = c.oracle_first
        table = LET_THROUGH
    elif kind == "over-refused":
        spot = c.gate_first
        table = OVER_REFUSED
    else:
        return None
    assert spot is not None
    return next((name for name, explains in table.items() if explains(c, spot)), None)

