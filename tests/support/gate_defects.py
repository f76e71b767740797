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

import re
from collections.abc import Callable

from kvmops.plan import Step
from tests.support import xml_oracle
from tests.support.gate_vs_oracle import Comparison, Found, Spot
from tests.support.random_facts import SITE
from tests.support.random_xml import without_gaps

DEFECTS = {
    "xml-host-files": "the XML policy lets through host files and devices outside the places the issue names: "
                      "a second <devices> or <os> block, <os><acpi><table>, <nvram template>, fw_cfg "
                      "<sysinfo><entry file>, <interface><rom file>, <input type='evdev'>, <tpm> pass-through, "
                      "<audio type='file' path>",
    "merge-origin-in-use": "a merge into an origin that is in use is let through when it is open on the host "
                           "(kpartx, mount), of unknown open state, held by the run, or the disk of a guest the "
                           "same run started: only the facts' running guests count",
    "run-made-lv": "no rule but confirm is applied to an LV the same run made: made twice, its guest started and "
                   "then its LV overwritten or shrunk, removed while a guest the run defined names it, "
                   "removed with -y/--force, its merge polling resumed",
    "unknown-open-after-stop": "an LV whose open state LVM cannot tell (attribute X) counts as free once the run "
                               "stopped the guest that had it as a disk",
    "other-disk-run-started": "a disk outside the site's VG (an image file, another VG's LV) counts as another "
                              "guest's only when the facts say that guest runs: host-recovery starts two guests "
                              "sharing one",
    "run-started-merge": "a guest is started on an origin whose merge the same run started and did not wait for",
    "hold-after-remove": "a phase holds an LV that an earlier phase of the run removed or renamed",
    "install-dev-null": "install -D -m 0600 /dev/null FILE (guest-create's NoCloud seed) is no known change: "
                        "every guest-create with setup=nocloud is refused",
    "bridge-up-port": "activating a bridge's VLAN port (ensure-network's repair), or a bridge whose only "
                      "non-VLAN ports are no guest's taps, is refused as re-activating a bridge with guest ports",
    "facts-not-run": "disk users are judged from the facts where the run changed them: a merge refused for a "
                     "guest the run stopped, a guest's restart (stop, then start) refused for the open flag it held "
                     "itself, an lvremove for a guest the run redefined without the LV, a second redefinition in "
                     "one run for a disk the guest already shared",
}


def _at(found: tuple[Found, ...], spot: Spot | None) -> list[Found]:
    return [f for f in found if (f.plan, f.step) == spot]


def _step(c: Comparison, spot: Spot | None) -> Step | None:
    if spot is None or spot[1] == 0:
        return None
    return c.run.plans[spot[0]].steps[spot[1] - 1]


def _argv(step: Step | None) -> tuple[str, ...]:
    cmd = step.cmd if step is not None else None
    return cmd.argv if cmd is not None else ()


def _before(c: Comparison, spot: Spot, actions: tuple[str, ...]) -> list[str]:
    """Objects of the oracle's effects with one of ``actions`` before ``spot``."""
    return [e.obj for e in c.effects if e.action in actions and (e.plan, e.step) < spot]


# -- the gate lets through what the oracle forbids -----------------------------------------------


def _xml_host_files(c: Comparison, spot: Spot) -> bool:
    step = _step(c, spot)
    call = step.call if step is not None else None
    if call is None or call.verb != "define" or {f.rule for f in _at(c.oracle, spot)} != {"xml-policy"}:
        return False
    return not xml_oracle.violations(without_gaps(call.xml), SITE, call.guest)


def _merge_origin_in_use(c: Comparison, spot: Spot) -> bool:
    found = _at(c.oracle, spot)
    return _argv(_step(c, spot))[:2] == ("lvconvert", "--mergesnapshot") and bool(found) and all(
        f.rule == "lv-free" and f.why.startswith("merge-into") for f in found)


def _run_made_lv(c: Comparison, spot: Spot) -> bool:
    made = set(_before(c, spot, ("create",)))
    here = {e.obj for e in c.effects if (e.plan, e.step) == spot}
    hold = c.run.hold(spot[0]) if spot[1] == 0 else None
    rules = {f.rule for f in _at(c.oracle, spot)}
    return bool(rules) and rules <= {"lv-exists", "lv-free", "lvremove", "merge", "grow-running"} and \
        bool((here | ({hold[0]} if hold else set())) & made)


def _unknown_open_after_stop(c: Comparison, spot: Spot) -> bool:
    found = _at(c.oracle, spot)
    return bool(found) and all(f.rule in ("lv-free", "start-free") and "cannot tell" in f.why for f in found) and \
        bool(_before(c, spot, ("destroy", "shutdown")))


def _other_disk_run_started(c: Comparison, spot: Spot) -> bool:
    found = _at(c.oracle, spot)
    started = _before(c, spot, ("start",))
    return bool(found) and all(f.rule == "start-free" and f.why.split(": ", 1)[-1].startswith("/")
                               and any(g in f.why.rsplit("guest(s)", 1)[-1] for g in started) for f in found)


def _run_started_merge(c: Comparison, spot: Spot) -> bool:
    found = _at(c.oracle, spot)
    return bool(found) and all(f.rule == "start-free" and "mid-merge" in f.why for f in found) and \
        bool(_before(c, spot, ("merge",)))


def _hold_after_remove(c: Comparison, spot: Spot) -> bool:
    hold = c.run.hold(spot[0])
    found = _at(c.oracle, spot)
    return spot[1] == 0 and hold is not None and [f.rule for f in found] == ["lv-exists"] and \
        hold[0] in _before(c, spot, ("remove", "rename"))


# -- the gate refuses what the oracle allows -----------------------------------------------------


def _install_dev_null(c: Comparison, spot: Spot) -> bool:
    argv = _argv(_step(c, spot))
    return argv[:1] == ("install",) and "/dev/null" in argv and {f.rule for f in _at(c.gate, spot)} == {"known"}


def _bridge_up_port(c: Comparison, spot: Spot) -> bool:
    argv = _argv(_step(c, spot))
    here = {e.action for e in c.effects if (e.plan, e.step) == spot}
    return argv[1:4] == ("connection", "up", "uuid") and {f.rule for f in _at(c.gate, spot)} == {"bridge"} and \
        bool(here & {"up", "up-port"})


RAN = (re.compile(r"running guest (\S+)$"), re.compile(r"defined guest\(s\) (.+)$"),
       re.compile(r"guest (\S+) would share"), re.compile(r"would share \S+ with (.+)$"))


def _facts_not_run(c: Comparison, spot: Spot) -> bool:
    found = _at(c.gate, spot)
    step = _step(c, spot)
    call = step.call if step is not None else None
    if call is not None and call.verb == "start" and found and all(
            f.rule == "start-free" and "is open on the host" in f.why for f in found):
        return call.guest in _before(c, spot, ("destroy", "shutdown"))  # its own open flag, stale after the stop
    if not found or not {f.rule for f in found} <= {"lv-free", "lvremove", "define-disks"}:
        return False
    changed = set(_before(c, spot, ("destroy", "shutdown", "define", "undefine")))
    for f in found:
        names = {n.strip() for p in RAN for m in p.finditer(f.why) for n in m.group(1).split(",")}
        if not names & changed:
            return False
    return True


LET_THROUGH: dict[str, Callable[[Comparison, Spot], bool]] = {
    "xml-host-files": _xml_host_files,
    "merge-origin-in-use": _merge_origin_in_use, "run-made-lv": _run_made_lv,
    "unknown-open-after-stop": _unknown_open_after_stop, "other-disk-run-started": _other_disk_run_started,
    "run-started-merge": _run_started_merge,
    "hold-after-remove": _hold_after_remove,
}
OVER_REFUSED: dict[str, Callable[[Comparison, Spot], bool]] = {
    "install-dev-null": _install_dev_null, "bridge-up-port": _bridge_up_port, "facts-not-run": _facts_not_run,
}


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

