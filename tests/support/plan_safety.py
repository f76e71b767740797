"""The tests' own safety oracle: the rules every run must keep, judged against a random
world's ground truth (:mod:`tests.support.random_facts`) on what plans do, read from their
steps (:mod:`tests.support.oracle_effects`). Independent of :mod:`kvmops.safety` on purpose:
the property tests compare the product's gate with it (tests/unit/test_gate_properties.py).

:func:`judge` walks the plans of one run in order (a
procedure's phases: what an earlier phase made, started, undefined or removed counts for the
later ones; a phase may hold a disk, :class:`Hold`) and reports every broken rule as a
:class:`Violation`, by rule id (the ids of kvmops' gate, so that both can be compared):

- ``known``: no changing step the rules do not know;
- ``site-vg``, ``guest-lv``: LV changes only on guest LVs (the site's prefix) of the site's VG;
- ``lv-exists``: an LV is changed only if it exists (or the run made it), made only if not;
- ``lv-free``: no removal, rename, shrink, snapshot, merge (of the snapshot or into its
  origin) or overwrite of an LV in use: a running or paused guest's disk (also one the run
  started), open on the host (LVM's open flag; unknown counts as open unless activation is
  off), or held by the run; no hold of such an LV; growing is allowed in use (guide 4.2.4);
- ``lvremove``: exactly one ``VG/LV``, never ``-y``/``--yes``/``-f``/``--force`` (guide
  4.2.3), never an LV a defined guest names or one with snapshots;
- ``merge``: only a valid snapshot that is not merging yet is merged; no snapshot of a
  snapshot; ``lvchange --poll y`` only on an origin whose merge is under way;
- ``grow-running``: growing a running guest's LV comes with ``virsh blockresize`` for that
  guest in the same plan;
- ``held-disk``: partition, filesystem and file changes inside a disk only on the disk the
  run holds for writing, never on a running guest's;
- ``start-free``: a guest starts only when every disk is free: not open on the host
  (unknown counts as open), not held by the run, not another running guest's disk, not
  mid-merge (also a merge this run started and did not wait for), not the origin of an
  overflowed snapshot;
- ``guest-state``: start and undefine or redefine only a defined guest that is not running;
  destroy and shutdown only a running one; autostart, eject, blockresize a defined one;
- ``define-disks``: a definition adds no host LV and no disk another defined guest names;
- ``mac``: a definition gives no two of its NICs one MAC, and none a MAC that a NIC of another
  guest defined on the host has (its definition as the run leaves it, and while it runs, the
  one it runs with);
- ``xml-policy``: :mod:`tests.support.xml_oracle`;
- ``bridge``: no deletion of a bridge guests use (a guest names it, or a port that is no
  VLAN port) nor of a host bridge; no re-activation of a bridge with guest (tap) ports;
- ``files``: files written, moved or removed only in the site's folders (kept XML, seeds,
  boot files); a backup engine's archives added or pruned only in the run's repository (the
  random runs have none);
- ``confirm``: every destructive step names its exact target: the ``VG/LV`` it removes,
  shrinks, merges or overwrites (an LV the run made excepted), the bridge it deletes, the
  guest it destroys, undefines or whose differing definition or kept XML it replaces, the
  guest whose backups a prune removes.

:func:`assert_safe` asserts that no rule is broken (the properties over kvmops' operations).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from kvmops.guests import hostfile
from kvmops.guests.xml import read_domain
from kvmops.plan import Plan
from tests.support import xml_oracle
from tests.support.oracle_effects import Effect, Hold, effects, lv_of
from tests.support.random_facts import HOST_BRIDGES, SITE, VG_NAME, World

__all__ = ["RULES", "Effect", "Hold", "Violation", "assert_safe", "effects", "judge", "violations"]

LV_CHANGES = ("remove", "rename", "shrink", "snapshot", "merge", "merge-into", "overwrite")
"""LV effects refused on an LV in use (growing and creating are not among them)."""
LV_ACTIONS = ("create", "grow", "resume-merge-poll", "activate", "tag", *LV_CHANGES)
BRIDGE_ACTIONS = ("delete-bridge", "up", "up-port", "modify", "reapply", "add", "up-new")
GUEST_ACTIONS = ("define", "undefine", "destroy", "start", "shutdown", "autostart", "eject", "blockresize")
FILE_ACTIONS = ("write-file", "retire-file", "remove-file", "make-dir")
REPO_ACTIONS = ("repo-add", "repo-prune")
RULES = ("known", "site-vg", "guest-lv", "lv-exists", "lv-free", "lvremove", "merge", "grow-running", "held-disk",
         "start-free", "guest-state", "define-disks", "mac", "xml-policy", "bridge", "files", "confirm")


@dataclass(frozen=True)
class Violation:
    """A broken rule: which, where (plan, step; step 0: the plan's hold), why."""

    rule: str
    plan: int
    step: int
    why: str

    def __str__(self) -> str:
        return f"plan {self.plan} step {self.step}: [{self.rule}] {self.why}"


# -- the run ---------------------------------------------------------------------------------


@dataclass
class _Run:
    """What the earlier steps of one run did (later phases are planned as if they had)."""

    world: World
    created: set[str] = field(default_factory=set)  # LV names of the site's VG
    removed: set[str] = field(default_factory=set)
    undefined: set[str] = field(default_factory=set)
    defined: dict[str, str] = field(default_factory=dict)  # guest -> its XML
    started: set[str] = field(default_factory=set)
    stopped: set[str] = field(default_factory=set)
    merged: set[str] = field(default_factory=set)  # LVs whose merge the run waited for
    merging: set[str] = field(default_factory=set)  # LVs of merges the run started
    snapshots: set[str] = field(default_factory=set)  # the LVs the run created that are snapshots
    hold: Hold | None = None
    grown: dict[str, Effect] = field(default_factory=dict)  # guest -> the grow of its disk (this plan)

    def known(self, guest: str) -> bool:
        return (guest in self.world.domains and guest not in self.undefined) or guest in self.defined

    def running(self, guest: str) -> bool:
        if not self.known(guest):
            return False
        return guest in self.started or (self.world.domains.get(guest, False) and guest not in self.stopped)

    def sources(self, guest: str) -> tuple[str, ...]:
        """The disk sources of the guest's current definition."""
        if guest in self.defined:
            return _xml_sources(self.defined[guest])
        return self.world.sources_of.get(guest, ()) if guest not in self.undefined else ()

    def lvs(self, guest: str) -> set[str]:
        """LV names of the site's VG that the guest's current definition has as disks."""
        return {lv[1] for lv in map(lv_of, self.sources(guest)) if lv and lv[0] == VG_NAME}

    def guests(self) -> set[str]:
        return {g for g in (*self.world.domains, *self.defined) if self.known(g)}

    def running_with(self, name: str, but: str = "") -> list[str]:
        """Running guests (now) with the LV ``name`` as a disk."""
        return sorted(g for g in self.guests() if g != but and self.running(g) and name in self.lvs(g))

    def exists(self, name: str) -> bool:
        if name in self.created:
            return True
        return name not in self.removed and self.world.facts.lvm.get(name) is not None

    def open_on_host(self, name: str) -> str | None:
        """Why LVM says the LV is (or may be) open; an LV this run made is not. The open flag
        of a running guest's disk is that guest's (it holds the disk open): once the run has
        stopped it, the LV is closed, unless it is also mapped on the host."""
        if name in self.created:
            return None
        flag = self.world.open_flag.get(name, "-")
        if flag == "o" and name in self.world.running_disks and name not in self.world.mapped:
            return None  # the guests' own: running_with() says whether one still runs
        if flag == "o":
            return "open on the host (LVM's open flag)"
        if flag == "X" and not self.world.activation_disabled:
            return "LVM cannot tell whether it is open"
        return None

    def in_use(self, name: str) -> str | None:
        if self.hold is not None and self.hold.source == f"{VG_NAME}/{name}":
            return "held (mapped) by this run"
        users = self.running_with(name)
        if users:
            return f"the disk of the running guest(s) {users}"
        return self.open_on_host(name)


@lru_cache(maxsize=8192)
def _xml_sources(xml: str) -> tuple[str, ...]:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return ()
    return tuple(s for d in root.iter("disk") if d.get("device", "disk") != "cdrom"
                 for src in d.findall("source") for s in (src.get("dev"), src.get("file")) if s)


# -- the rules -------------------------------------------------------------------------------


def judge(world: World, plans: Sequence[Plan], holds: Sequence[Hold | None] = ()) -> tuple[list[Effect],
                                                                                        list[Violation]]:
    """Every effect of the plans of one run, in order, and every rule they break."""
    run = _Run(world)
    seen: list[Effect] = []
    out: list[Violation] = []
    for index, plan in enumerate(plans):
        run.hold = holds[index] if index < len(holds) else None
        if run.hold is not None:
            out += _hold(run, index)
        plan_effects = effects(plan, world, index, run.hold)
        for eff in plan_effects:
            out += [Violation(rule, eff.plan, eff.step, why) for rule, why in _check(run, eff)]
            seen.append(eff)
        out += _untold_grows(run, plan_effects)
    return seen, out


def violations(world: World, plans: Sequence[Plan], holds: Sequence[Hold | None] = ()) -> list[Violation]:
    return judge(world, plans, holds)[1]


def assert_safe(world: World, plans: Iterable[Plan]) -> list[Effect]:
    """Every rule of the module docstring, for the plans of one run in order; returns the effects."""
    seen, broken = judge(world, list(plans))
    assert not broken, "\n".join(map(str, broken))
    return seen


Found = list[tuple[str, str]]


def _check(run: _Run, eff: Effect) -> Found:
    a = eff.action
    if a == "unknown":
        return [("known", f"a changing step the rules do not know: {eff.obj}")]
    if a == "merged":
        snap = eff.obj.split("/", 1)[1]
        run.merged |= {snap, str(eff.detail).split("/", 1)[1]}
        have = run.world.facts.lvm.get(snap)
        if have is not None and have.is_snapshot:  # the merge waited for: the snapshot is gone
            run.removed.add(snap)
        return []
    if a in LV_ACTIONS:
        return _check_lv(run, eff)
    if a == "held-write":
        return _check_held(run, eff)
    if a in GUEST_ACTIONS:
        return _check_guest(run, eff)
    if a in BRIDGE_ACTIONS:
        return _check_bridge(run.world, eff)
    if a in FILE_ACTIONS:
        return _check_file(run.world, eff)
    if a in REPO_ACTIONS:
        return _check_repo(eff)
    raise AssertionError(f"an effect the oracle has no rule for: {eff}")


def _lv_name(obj: str) -> tuple[str | None, Found]:
    vg, _, name = obj.partition("/")
    if vg != VG_NAME or not name or "/" in name or " " in obj:
        return None, [("site-vg", f"{obj!r} is no LV of the site's VG")]
    if not World.guest_lv(name):
        return None, [("guest-lv", f"{obj} is a host LV")]
    return name, []


def _check_lv(run: _Run, eff: Effect) -> Found:
    argv_bad = _lvremove_argv(eff.detail) if eff.action == "remove" else None
    if argv_bad and len([x for x in eff.detail[1:] if not x.startswith("-")]) != 1:
        return [("lvremove", argv_bad)]  # no one LV it acts on
    name, bad = _lv_name(eff.obj)
    if name is None:
        return bad
    if argv_bad:
        bad.append(("lvremove", argv_bad))
    if eff.action == "create":
        if run.exists(name):
            return [("lv-exists", f"creating {eff.obj}, which exists")]
        run.created.add(name)
        run.removed.discard(name)
        if eff.detail == "snapshot":
            run.snapshots.add(name)
        return []
    if not run.exists(name) and eff.action != "merge-into":  # a snapshot's origin exists, renamed or not
        return [*bad, ("lv-exists", f"{eff.action} of {eff.obj}, which does not exist")]
    out = bad + _lv_rules(run, eff, name)
    if eff.action in ("remove", "rename"):
        run.removed.add(name)
        run.created.discard(name)
    return out


def _lvremove_argv(argv: tuple[str, ...]) -> str | None:
    names = [x for x in argv[1:] if not x.startswith("-")]
    flags = [x for x in argv[1:] if x.startswith("-")]
    if any(f in ("--yes", "--force") or (not f.startswith("--") and set(f[1:]) & {"y", "f"}) or
           f.startswith("--force") for f in flags):
        return f"lvremove with {flags}: never -y/--yes/-f/--force (guide 4.2.3)"
    if len(names) != 1 or names[0].count("/") != 1 or not all(names[0].split("/")):
        return f"lvremove of {names}: exactly one VG/LV"
    return None


def _lv_rules(run: _Run, eff: Effect, name: str) -> Found:
    a, world, out = eff.action, run.world, []
    mine = name in run.created
    have = None if mine else world.facts.lvm.get(name)
    if a in LV_CHANGES:
        why = run.in_use(name)
        if why:
            out.append(("lv-free", f"{a} of {eff.obj}: {why}"))
    if a in ("remove", "shrink", "merge", "overwrite") and not mine and eff.target != eff.obj:
        out.append(("confirm", f"{a} of {eff.obj} with target {eff.target!r}"))
    if a == "remove":
        users = sorted(g for g in run.guests() if name in run.lvs(g))
        if users:
            out.append(("lvremove", f"removing {eff.obj}, a disk of the defined guest(s) {users}"))
        left = [s.name for s in world.facts.lvm.snapshots_of(name) if s.name not in run.removed]
        if left:
            out.append(("lvremove", f"removing {eff.obj} would take its snapshots {left}"))
    elif a == "merge" and mine and name not in run.snapshots:
        out.append(("merge", f"merging {name}, which this run made as no snapshot"))
    elif a == "merge" and have is not None:
        if not have.is_snapshot or have.invalid or have.merging or name in run.merging:
            since = ", merging since this run" if name in run.merging else ""
            out.append(("merge", f"merging {have.name} ({have.attr}{since})"))
        else:
            run.merging |= {name, have.origin}
    elif a == "snapshot" and have is not None and have.is_snapshot:
        out.append(("merge", f"a snapshot of the snapshot {eff.obj}"))
    elif a == "resume-merge-poll":
        if not ((name in world.merging and name not in run.merged) or name in run.merging
                or any(s.merging and s.name not in run.merged for s in world.facts.lvm.snapshots_of(name))):
            out.append(("merge", f"lvchange --poll y on {eff.obj}, where no merge is under way"))
    elif a == "grow":
        for guest in run.running_with(name):
            run.grown.setdefault(guest, eff)
    return out


def _untold_grows(run: _Run, plan_effects: list[Effect]) -> list[Violation]:
    told = {e.obj for e in plan_effects if e.action == "blockresize"}
    out = [Violation("grow-running", e.plan, e.step, f"grows {e.obj}, a disk of the running guest {g}, "
                     "without virsh blockresize") for g, e in sorted(run.grown.items()) if g not in told]
    run.grown.clear()
    return out


def _hold(run: _Run, index: int) -> list[Violation]:
    assert run.hold is not None
    if run.hold.source.startswith("/"):  # an image file: no running guest may have it as a disk
        users = [g for g in run.guests() if run.running(g) and run.hold.source in run.sources(g)]
        return [Violation("lv-free", index, 0, f"holding {run.hold.source}, the disk of {users}")] if users else []
    name, bad = _lv_name(run.hold.source)
    if name is None:
        return [Violation(r, index, 0, why) for r, why in bad]
    if not run.exists(name):
        return [Violation("lv-exists", index, 0, f"holding {run.hold.source}, which does not exist")]
    users = run.running_with(name)
    why = f"the disk of the running guest(s) {users}" if users else run.open_on_host(name)
    return [Violation("lv-free", index, 0, f"holding {run.hold.source}: {why}")] if why else []


def _check_held(run: _Run, eff: Effect) -> Found:
    hold = run.hold
    if not eff.obj or hold is None or eff.obj != hold.source:
        return [("held-disk", f"{eff.detail}: not on a disk this run holds")]
    if not hold.write:
        return [("held-disk", f"{eff.detail}: the run holds {hold.source} read-only")]
    users = run.running_with(hold.source.split("/", 1)[1]) if not hold.source.startswith("/") else \
        [g for g in run.guests() if run.running(g) and hold.source in run.sources(g)]
    return [("held-disk", f"{eff.detail}: {hold.source} is the disk of the running guest(s) {users}")] if users else []


# -- guests ----------------------------------------------------------------------------------


def _check_guest(run: _Run, eff: Effect) -> Found:
    name, a = eff.obj, eff.action
    known, active = run.known(name), run.running(name)
    out: Found = []
    if a == "define":
        out = _check_define(run, eff, known, active)
        run.defined[name] = str(eff.detail)
        run.undefined.discard(name)
    elif a == "undefine":
        if not known or active:
            out.append(("guest-state", f"undefine of {name} (defined: {known}, running: {active})"))
        if eff.target != name:
            out.append(("confirm", f"undefine of {name} with target {eff.target!r}"))
        run.undefined.add(name)
        run.defined.pop(name, None)
    elif a in ("destroy", "shutdown"):
        if not active:
            out.append(("guest-state", f"{a} of {name}, which is not running"))
        if a == "destroy" and eff.target != name:
            out.append(("confirm", f"destroy of {name} with target {eff.target!r}"))
        run.stopped.add(name)
        run.started.discard(name)
    elif a == "start":
        if not known or active:
            out.append(("guest-state", f"start of {name} (defined: {known}, running: {active})"))
        else:
            out += [("start-free", f"start of {name}: {why}") for why in _start_blockers(run, name)]
        run.started.add(name)
        run.stopped.discard(name)
    elif not known:
        out.append(("guest-state", f"{a} of {name}, which is not defined"))
    return out


def _start_blockers(run: _Run, guest: str) -> list[str]:
    out: list[str] = []
    world = run.world
    for source in run.sources(guest):
        lv = lv_of(source)
        if lv is None or lv[0] != VG_NAME:
            others = [g for g in run.guests() if g != guest and run.running(g)
                      and os.path.normpath(source) in map(os.path.normpath, run.sources(g))]
            out += [f"{source} is the disk of the running guest(s) {others}"] if others else []
            continue
        name = lv[1]
        others = run.running_with(name, but=guest)
        if not run.exists(name):  # a missing disk is libvirt's to refuse, unless a running guest names it too
            out += [f"its disk {source}: the disk of the running guest(s) {others}"] if others else []
            continue
        why = run.in_use(name) if not others else f"the disk of the running guest(s) {others}"
        if why:
            out.append(f"its disk {source}: {why}")
        snaps = [s.name for s in world.facts.lvm.snapshots_of(name)]
        mid = {name, *snaps} & ((world.merging - run.merged) | run.merging)
        if mid:
            out.append(f"its disk {source} is mid-merge ({sorted(mid)})")
        bad = [s for s in world.invalid_of.get(name, ()) if s not in run.removed and s not in run.merged]
        if bad:
            out.append(f"its disk {source} is the origin of the overflowed snapshot(s) {bad}")
    return out


def _check_define(run: _Run, eff: Effect, known: bool, active: bool) -> Found:
    """The XML policy; no running guest redefined, a changed definition confirmed; a disk the
    definition adds is no host LV and no other guest's disk (what it had is not kvmops' doing)."""
    name, xml, world = eff.obj, str(eff.detail), run.world
    out: Found = [("xml-policy", why) for why in xml_oracle.violations(xml, SITE, name)]
    now = run.defined[name] if name in run.defined else \
        next((d.inactive_xml for d in world.facts.domains if d.name == name), None) if known else None
    if active and (now is None or _differs(now, xml)):  # an emptied CD-ROM is no redefinition, also of a
        out.append(("guest-state", f"redefining the running guest {name}"))  # definition this run made
    had: set[str] = set()
    if known and name not in run.defined:
        old = next(d for d in world.facts.domains if d.name == name).inactive_xml
        if _differs(old, xml) and eff.target != name:
            out.append(("confirm", f"replacing the definition of {name} without target"))
    if known:
        had = run.lvs(name)
    for lv in {x for x in map(lv_of, _xml_sources(xml)) if x and x[0] == VG_NAME}:
        if lv[1] in had:
            continue
        if not World.guest_lv(lv[1]):
            out.append(("define-disks", f"guest {name} defined with the host LV {lv[1]}"))
        others = sorted(g for g in run.guests() if g != name and lv[1] in run.lvs(g))
        if others:
            out.append(("define-disks", f"guest {name} defined with {lv[1]}, a disk of {others}"))
    return out + _check_macs(run, name, xml)


def _check_macs(run: _Run, name: str, xml: str) -> Found:
    """No MAC twice in the definition, none that another defined guest's NIC has."""
    mine = _macs(xml)
    out: Found = [("mac", f"guest {name} has the MAC {m} twice") for i, m in enumerate(mine) if m in mine[:i]]
    for other in sorted(run.guests()):
        if other == name:
            continue
        domain = next((d for d in run.world.facts.domains if d.name == other), None)
        xmls = [run.defined[other]] if other in run.defined else []
        if domain is not None and (other not in run.defined or (domain.active and other not in run.started)):
            xmls += [domain.xml] if other in run.defined else [domain.xml, domain.inactive_xml]
        theirs = {m for x in xmls if x for m in _macs(x)}
        out += [("mac", f"guest {name} gets the MAC {m} of guest {other}") for m in mine if m in theirs]
    return out


def _differs(old: str, new: str) -> bool:
    """A changed definition; the same with its CD-ROM emptied (a retired seed) is no change
    that needs confirming."""
    emptied = tuple(("cdrom: (empty)" if x.startswith("cdrom: ") else x) for x in _lines(old))
    return _lines(old) != _lines(new) and emptied != _lines(new)


def _macs(xml: str) -> list[str]:
    try:
        root = ET.fromstring(xml)  # the tests' own worlds
    except ET.ParseError:
        return []
    return [str(el.get("address", "")).strip().lower() for el in root.iterfind("devices/interface/mac")
            if el.get("address")]


@lru_cache(maxsize=8192)
def _lines(xml: str) -> tuple[str, ...]:
    try:
        return tuple(read_domain(xml).lines())
    except Exception:
        return (xml,)


# -- bridges and files -----------------------------------------------------------------------


def _check_bridge(world: World, eff: Effect) -> Found:
    bridge, out = eff.obj, []
    if eff.action == "delete-bridge":
        if bridge in world.bridges_used:
            out.append(("bridge", f"deleting the bridge {bridge}, which guests use"))
        if bridge in HOST_BRIDGES:
            out.append(("bridge", f"deleting the host bridge {bridge}"))
        if eff.target != bridge:
            out.append(("confirm", f"deleting {bridge} with target {eff.target!r}"))
    if eff.action == "up" and bridge in world.bridges_tapped:
        out.append(("bridge", f"re-activating the bridge {bridge}, which has guest ports (activation detaches them)"))
    return out


FOLDERS = tuple(os.path.normpath(f) for f in (SITE.xml_dir, SITE.seed_dir, SITE.boot_dir, SITE.file_disk_dir) if f)


def _check_file(world: World, eff: Effect) -> Found:
    path = os.path.normpath(eff.obj) if eff.obj.startswith("/") else eff.obj
    if not any(path.startswith(f + "/") for f in FOLDERS):
        return [("files", f"{eff.action} of {eff.obj}: outside the site's folders {FOLDERS}")]
    if eff.action != "write-file" or os.path.dirname(path) != os.path.normpath(SITE.xml_dir) \
            or not path.endswith(".xml") or eff.detail is None:
        return []
    kept = world.facts.files.get(path)
    guest = os.path.basename(path)[: -len(".xml")]
    if kept is not None and kept != eff.detail and eff.target != guest and _differs(kept, str(eff.detail)):
        return [("confirm", f"replacing the differing kept XML {path} without target {guest!r}")]
    return []


def _check_repo(eff: Effect) -> Found:
    """A backup engine's repository: a random world's runs are given none, so every archive
    added or pruned is outside the run's places; a prune also needs its guest as target."""
    found = [("files", f"{eff.action} in {eff.obj}: the run has no backup repository")]
    if eff.action == "repo-prune" and eff.target != eff.detail:
        found.append(("confirm", f"pruning {eff.detail}'s backups without target {eff.detail!r}"))
    return found


def xml_path(guest: str) -> str:
    return hostfile.xml_path(SITE, guest)


def by_rule(found: Iterable[Violation]) -> Mapping[str, list[Violation]]:
    out: dict[str, list[Violation]] = {}
    for v in found:
        out.setdefault(v.rule, []).append(v)
    return out
