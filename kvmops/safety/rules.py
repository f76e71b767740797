"""The rules every plan keeps, whoever planned it, judged against the facts (pure).

:data:`RULES` lists them with their text (the manual's safety page is generated from it);
:func:`judge` applies them to the effects of one plan (:mod:`kvmops.safety.effects`), in
order, with what the earlier steps of the same run did (:class:`RunState`: an LV this run
made may be filled without confirmation, a guest this run defined may be started, a merge
this run waited for has finished). It returns the refusals; the executor refuses a plan with
any before its first change (:mod:`kvmops.executor`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from kvmops.errors import SafetyError
from kvmops.guards import lvremove_argv
from kvmops.guests.macs import collisions
from kvmops.guests.xml import macs_of, read_domain
from kvmops.hostfacts import HostFacts
from kvmops.lvm.facts import LV
from kvmops.lvm.paths import lv_path
from kvmops.net.drift import guest_bridge_pattern
from kvmops.safety import effects as fx
from kvmops.safety.effects import Effect
from kvmops.safety.xmlpolicy import refusals as xml_refusals
from kvmops.transfer.lvm import INCOMPLETE_COPIES, SCRATCH_SNAPSHOTS


@dataclass(frozen=True)
class Rule:
    """One rule: a short id, a title and what it says (shown on the manual's safety page)."""

    id: str
    title: str
    text: str


RULES: tuple[Rule, ...] = (
    Rule("known", "Only known changes", "A changing step that the rules do not know (a command, a libvirt call or "
         "a transfer whose effect kvmops cannot name) is refused, never passed through."),
    Rule("site-vg", "The site's VG only", "LV changes act on LVs of the site's volume group only."),
    Rule("guest-lv", "Never a host LV", "Only LVs that follow the guest naming convention (the site's LV prefix) "
         "are changed; host LVs (root, home, opt, swap, ...) never (guide 4.2.1)."),
    Rule("lv-exists", "LVs that exist", "An LV is changed only if it exists (or this run made it), and made only if "
         "it does not exist yet."),
    Rule("lv-free", "Not an LV in use", "No removal, rename, shrink, snapshot, merge, overwrite or mapping for writing "
         "of an LV that is in use: the disk of a running or paused guest, open on the host (mounted, mapped with "
         "kpartx, held by a process), or of which LVM cannot tell whether it is open. Growing is allowed in use "
         "(guide 4.2.4)."),
    Rule("lvremove", "lvremove as the guide says", "lvremove gets exactly one VG/LV and never -y, --yes, -f or "
         "--force (guide 4.2.3); it never removes an LV that a defined guest names, nor one with snapshots."),
    Rule("merge", "Merges that can work", "Only a valid snapshot that is not already merging is merged; no snapshot "
         "of a snapshot; the polling of a merge (lvchange --poll y) is resumed only on an origin whose merge is "
         "under way."),
    Rule("grow-running", "A running guest learns its disk grew", "Growing the LV of a running guest also tells the "
         "guest (virsh blockresize) in the same plan; otherwise it sees the old size until its next start."),
    Rule("held-disk", "Disk changes only on a disk this run holds", "Partition, filesystem and file changes inside "
         "a guest disk (sfdisk, kpartx -u, resize2fs, xfs_growfs, chroot) only on a disk this run has mapped for "
         "writing, and never on the disk of a running guest."),
    Rule("start-free", "A guest starts only on free disks", "Starting a guest needs every one of its disks free: not "
         "open on the host (a kpartx mapping, a mount), not held by this run, not the disk of another running guest, "
         "not mid-merge, not the origin of an invalid snapshot. The refusal names what holds the disk and the way "
         "out."),
    Rule("guest-state", "Guests in the right state", "Only a shut-off guest is started, undefined or redefined; only "
         "a running guest is destroyed or shut down."),
    Rule("define-disks", "A definition takes no other's disk", "A definition adds no host LV and no disk of another "
         "guest."),
    Rule("mac", "One MAC, one NIC", "A definition gives no NIC a MAC address that another of its NICs, or a NIC of "
         "another guest defined on the same host, has: two NICs with one MAC on a network disturb each other. A moved "
         "or restored guest keeps its MACs; a new guest, or a copy under a new name, gets free ones."),
    Rule("xml-policy", "The domain XML policy", "Every definition (guest-create, lv-rename, guest-move, a restore, "
         "any XML) passes the domain XML policy: disks only LVs of the site's VG named for the guest (CD-ROMs only "
         "from the seed folder), interfaces only bridges of the site's VLANs, no hostdev, filesystem, lun/scsi "
         "pass-through, qemu: namespace, seclabel, or serial/console/channel backed by host files or sockets, "
         "kernel and initrd only from the site's boot folder. Whatever is refused is named, element by element."),
    Rule("bridge", "Bridges in use stay", "No deletion of a bridge that guests use (a defined guest names it, or a "
         "port that is no VLAN port) nor of a host bridge; no re-activation of a bridge with guest ports."),
    Rule("files", "Files only in kvmops' folders", "Files are written, moved or removed only in the site's folders "
         "(the kept XML, the seeds, the boot folder) or in the backup place of the run; a backup engine's "
         "archives are added or pruned only in the run's repository; a differing kept XML file is replaced only "
         "with its guest confirmed."),
    Rule("confirm", "Destructive steps carry their target", "Every destructive step names its exact target: the "
         "VG/LV it removes, shrinks, merges or overwrites (an LV made by the same run excepted), the bridge it "
         "deletes, the guest it destroys, undefines or redefines, the guest whose backups a prune removes; the "
         "run's confirmations must include it."),
)
RULE_IDS = frozenset(r.id for r in RULES)


@dataclass(frozen=True)
class Refusal:
    """A step the gate refuses: which rule, which step, why, and the way out."""

    rule: str
    step: int
    display: str
    why: str
    way_out: str = ""

    def render(self) -> str:
        out = f"step {self.step} (`{self.display}`): {self.why} [rule {self.rule}]"
        return out + (f"; {self.way_out}" if self.way_out else "")


@dataclass(frozen=True)
class Context:
    """What the gate judges against: the facts of every host of the run (by name), the disks
    the run holds (host -> device or mount point -> source; a held source written only when
    in ``writable``), and the backup places (host -> folder)."""

    facts: Mapping[str, HostFacts]
    held: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    writable: frozenset[str] = frozenset()
    places: Mapping[str, str] = field(default_factory=dict)


@dataclass
class RunState:
    """What earlier steps of the run did (later phases are planned as if they had): keys are
    ``(host, VG/LV)`` or ``(host, guest)``."""

    made: dict[tuple[str, str], LV] = field(default_factory=dict)  # LVs this run created (or renamed to)
    removed: set[tuple[str, str]] = field(default_factory=set)  # removed, or renamed away
    renamed: dict[tuple[str, str], str] = field(default_factory=dict)  # renamed away -> its new VG/LV
    merging: set[tuple[str, str]] = field(default_factory=set)  # merges this run started, not waited for
    merged: set[tuple[str, str]] = field(default_factory=set)  # origin or snapshot of a merge waited for
    defined: dict[tuple[str, str], str] = field(default_factory=dict)  # guest -> the XML this run defined
    undefined: set[tuple[str, str]] = field(default_factory=set)
    started: set[tuple[str, str]] = field(default_factory=set)
    stopped: set[tuple[str, str]] = field(default_factory=set)
    grown: dict[tuple[str, str], int] = field(default_factory=dict)  # running guest -> the step that grew its disk

    @property
    def created(self) -> set[tuple[str, str]]:
        return set(self.made)


class Now:
    """One host as the run leaves it so far: its facts, and what the run's earlier steps did."""

    def __init__(self, facts: HostFacts, run: RunState, host: str, held: Mapping[str, str] | None = None) -> None:
        self.facts, self.run, self.host = facts, run, host
        self.held = set((held or {}).values())

    def key(self, name: str) -> tuple[str, str]:
        return (self.host, name)

    # -- guests ----------------------------------------------------------------------------------

    def defined(self, g: str) -> bool:
        return self.key(g) in self.run.defined or (self.facts.domain(g) is not None
                                                   and self.key(g) not in self.run.undefined)

    def running(self, g: str) -> bool:
        if not self.defined(g) or self.key(g) in self.run.stopped:
            return False
        info = self.facts.domain(g)
        return self.key(g) in self.run.started or (info is not None and info.active)

    def xml(self, g: str) -> str | None:
        """The definition the guest's next start uses."""
        if self.key(g) in self.run.defined:
            return self.run.defined[self.key(g)]
        info = self.facts.domain(g) if self.defined(g) else None
        return (info.inactive_xml or info.xml) if info is not None else None

    def live_xml(self, g: str) -> str | None:
        """The definition a running guest runs with (its disks now)."""
        info = self.facts.domain(g)
        if info is not None and info.active and self.key(g) not in self.run.started:
            return info.xml
        return self.xml(g)

    def guests(self) -> list[str]:
        names = {d.name for d in self.facts.domains} | {g for h, g in self.run.defined if h == self.host}
        return sorted(g for g in names if self.defined(g))

    def sources(self, g: str, *, live: bool = False) -> tuple[str, ...]:
        xml = self.live_xml(g) if live else self.xml(g)
        return _sources(xml) if xml else ()

    def users(self, source: str, *, running: bool) -> list[str]:
        """Guests with ``source`` (``/dev/...``, a file, or ``VG/LV``) as a disk: defined now, or running now."""
        want = _disk_key(source)
        return [g for g in self.guests() if (not running or self.running(g))
                and want in {_disk_key(s) for s in self.sources(g, live=running)}]

    # -- LVs -------------------------------------------------------------------------------------

    def lv(self, path: str) -> LV | None:
        if self.key(path) in self.run.made:
            return self.run.made[self.key(path)]
        if self.key(path) in self.run.removed:
            return None
        vg, _, name = path.partition("/")
        return self.facts.lvm.get(name) if vg == self.facts.site.vg else None

    def lv_by_old_name(self, path: str) -> LV | None:
        """The LV at ``path``, or the one it was renamed to by this run (renames followed)."""
        for _ in range(len(self.run.renamed) + 1):
            found = self.lv(path)
            if found is not None or self.key(path) not in self.run.renamed:
                return found
            path = self.run.renamed[self.key(path)]
        return None

    def made(self, path: str) -> bool:
        return self.key(path) in self.run.made

    def snapshots(self, lv: LV) -> list[LV]:
        found = [s for s in self.facts.lvm.snapshots_of(lv.name) if self.lv(s.path) is not None]
        found += [s for (h, _p), s in self.run.made.items() if h == self.host and s.origin == lv.name]
        return found

    def open_state(self, lv: LV) -> bool | None:
        """LVM's open flag as the run leaves it: an LV this run made is opened only by guests
        (counted as users); a flag that only the guests this run stopped explain is gone."""
        if self.made(lv.path):
            return False
        flag = self.facts.lvm.is_open(lv)
        openers = self.facts.running_guests_with_lv(lv.path)
        if flag and openers and all(self.key(g) in self.run.stopped for g in openers):
            return False
        return flag

    def merging(self, lv: LV) -> list[str]:
        parts = [lv, *self.snapshots(lv)]
        busy = [p.path for p in parts if (p.merging or self.key(p.path) in self.run.merging)
                and self.key(p.path) not in self.run.merged]
        return busy

    def in_use(self, lv: LV) -> str | None:
        """Why ``lv`` must be left alone now, else None (unknown counts as in use)."""
        if lv.path in self.held:
            return "this run holds it mapped"
        users = self.users(lv.path, running=True)
        if users:
            return f"it is the disk of the running guest {', '.join(users)}"
        flag = self.open_state(lv)
        if flag is None:
            return (f"LVM cannot tell whether it is open (attributes {lv.attr!r}): check `lvs -o lv_name,lv_attr` "
                    "on the host")
        return "it is open (mounted, mapped with kpartx, or held by a process)" if flag else None


def _sources(xml: str) -> tuple[str, ...]:
    try:
        return read_domain(xml).disk_sources
    except Exception:
        return ()


def _disk_key(source: str) -> str:
    """``/dev/VG/LV`` and ``/dev/mapper/VG-LV`` -> ``VG/LV``; a file: its normalised path."""
    if "/" in source and not source.startswith("/"):
        return source
    return lv_path(source) or (os.path.normpath(source) if source.startswith("/") else source)


def judge(effects: list[Effect], ctx: Context, run: RunState) -> list[Refusal]:
    """Every refusal for ``effects`` (one plan's, in order); ``run`` is updated as they go."""
    out: list[Refusal] = []
    for eff in effects:
        facts = ctx.facts.get(eff.host)
        if eff.action == fx.UNKNOWN:
            out.append(_no(eff, "known", f"a changing step kvmops' safety rules do not know ({eff.obj})",
                           "nothing runs unjudged: this is a bug of kvmops, report it"))
        elif facts is None:
            out += _peer(eff, ctx)
        else:
            out += _judge_one(eff, Now(facts, run, eff.host, ctx.held.get(eff.host)), ctx)
    out += _unannounced_grows(effects, run)
    return out


def _no(eff: Effect, rule: str, why: str, way_out: str = "") -> Refusal:
    assert rule in RULE_IDS, rule
    return Refusal(rule, eff.index, eff.display, why, way_out)


def _judge_one(eff: Effect, now: Now, ctx: Context) -> list[Refusal]:
    a = eff.action
    if a in fx.LV_ACTIONS:
        return _lv(eff, now)
    if a == fx.MERGED:
        now.run.merged |= {now.key(eff.obj), now.key(str(eff.detail))}
        now.run.merging -= {now.key(eff.obj), now.key(str(eff.detail))}
        merged = now.lv(eff.obj)
        if merged is not None and merged.origin:  # a merged snapshot is gone; waiting on any other LV removes none
            now.run.removed.add(now.key(eff.obj))
        return []
    if a == fx.HELD_WRITE:
        return _held(eff, now, ctx)
    if a in fx.GUEST_ACTIONS:
        return _guest(eff, now)
    if a in fx.BRIDGE_ACTIONS:
        return _bridge(eff, now.facts)
    if a in fx.REPO_ACTIONS:
        return _repo(eff, ctx)
    return _file(eff, now.facts, ctx)


# -- LVs -------------------------------------------------------------------------------------

DESTROYS = (fx.LV_REMOVE, fx.LV_SHRINK, fx.LV_MERGE, fx.LV_OVERWRITE)
NEEDS_FREE = (fx.LV_REMOVE, fx.LV_RENAME, fx.LV_SHRINK, fx.LV_SNAPSHOT, fx.LV_MERGE, fx.LV_OVERWRITE)


def _lv(eff: Effect, now: Now) -> list[Refusal]:
    site = now.facts.site
    vg, _, name = eff.obj.partition("/")
    if vg != site.vg or not name or "/" in name:
        return [_no(eff, "site-vg", f"{eff.obj} is not an LV of the site's VG {site.vg}")]
    if not site.is_guest_lv(name):
        return [_no(eff, "guest-lv", f"{eff.obj} is a host LV (no {site.lv_prefix!r} prefix): kvmops never "
                                     "changes those")]
    have = now.lv(eff.obj)
    if eff.action == fx.LV_CREATE:
        if have is not None:
            return [_no(eff, "lv-exists", f"{eff.obj} exists already", "pick another name, or remove it first")]
        size = eff.detail if isinstance(eff.detail, int) else 0
        now.run.made[now.key(eff.obj)] = LV(name, vg, "-wi-a-----", size, "", None, None)
        now.run.removed.discard(now.key(eff.obj))
        if isinstance(eff.detail, tuple) and eff.detail[0] == fx.RENAMED:
            now.run.renamed[now.key(str(eff.detail[1]))] = eff.obj
        return []
    if have is None:
        return [_no(eff, "lv-exists", f"{eff.obj} does not exist on {site.name}")]
    out = _lv_rules(eff, now, have)
    _lv_done(eff, now, have)
    return out


def _lv_done(eff: Effect, now: Now, have: LV) -> None:
    """What the step leaves: the LV gone (remove, rename), a snapshot made, a merge under way."""
    key = now.key(eff.obj)
    if eff.action in (fx.LV_REMOVE, fx.LV_RENAME):
        now.run.made.pop(key, None)
        now.run.removed.add(key)
    elif eff.action == fx.LV_MERGE and have.origin:
        now.run.merging |= {key, now.key(f"{have.vg}/{have.origin}")}


def _lv_rules(eff: Effect, now: Now, have: LV) -> list[Refusal]:
    a, out = eff.action, []
    if a in NEEDS_FREE:
        why = now.in_use(have)
        if why:
            out.append(_no(eff, "lv-free", f"{have.path} is in use: {why}", _free_way_out(have)))
    partial = (a == fx.LV_OVERWRITE and bool(set(have.tags) & set(INCOMPLETE_COPIES))) or \
        (a == fx.LV_REMOVE and have.is_snapshot and bool(set(have.tags) & set(SCRATCH_SNAPSHOTS)))
    if a in DESTROYS and eff.target != eff.obj and not now.made(eff.obj) and not partial:
        # what this run made holds nothing older; a copy kvmops left unfinished holds nothing whole
        out.append(_no(eff, "confirm", f"destroys data of {eff.obj} but names {eff.target!r} as its target"))
    if a == fx.LV_REMOVE:
        out += _remove(eff, now, have)
    elif a == fx.LV_MERGE:
        out += _merge(eff, now, have)
    elif a == fx.LV_SNAPSHOT and have.is_snapshot:
        out.append(_no(eff, "merge", f"{eff.obj} is a snapshot: no snapshot of a snapshot"))
    elif a == fx.LV_POLL and not now.merging(have):
        out.append(_no(eff, "merge", f"no merge is under way on {have.path}: nothing to resume"))
    elif a == fx.LV_GROW:
        out += _grow(eff, now, have)
    return out


def _grow(eff: Effect, now: Now, have: LV) -> list[Refusal]:
    size = eff.detail if isinstance(eff.detail, int) else 0
    for guest in now.users(have.path, running=True):
        now.run.grown.setdefault(now.key(guest), eff.index)
    if size <= have.size:
        return [_no(eff, "confirm", f"a grow of {eff.obj} to {size} bytes is no grow (it has {have.size})")]
    return []


def _remove(eff: Effect, now: Now, have: LV) -> list[Refusal]:
    out = []
    try:
        lvremove_argv(eff.detail if isinstance(eff.detail, tuple) else ())
    except SafetyError as exc:
        out.append(_no(eff, "lvremove", str(exc)))
    users = now.users(have.path, running=False)
    if users:
        out.append(_no(eff, "lvremove", f"{have.path} is a disk of the defined guest(s) {', '.join(users)}",
                       "remove the guest first (guest-remove)"))
    snaps = [s.path for s in now.snapshots(have)]
    if snaps:
        out.append(_no(eff, "lvremove", f"{have.path} has snapshots ({', '.join(snaps)}): lvremove would take them",
                       "remove or merge each snapshot first"))
    return out


def _merge(eff: Effect, now: Now, have: LV) -> list[Refusal]:
    if not have.is_snapshot:
        return [_no(eff, "merge", f"{have.path} is no snapshot")]
    if have.invalid or now.merging(have):
        return [_no(eff, "merge", f"{have.path} is {'invalid (it overflowed)' if have.invalid else 'merging already'}")]
    origin = now.lv_by_old_name(f"{have.vg}/{have.origin}")  # a snapshot follows its origin's renames
    if origin is None:
        return [_no(eff, "merge", f"its origin {have.vg}/{have.origin} does not exist")]
    why = now.in_use(origin)
    return [_no(eff, "lv-free", f"its origin {origin.path} is in use: {why}", _free_way_out(origin))] if why else []


def _free_way_out(lv: LV) -> str:
    return (f"shut its guest down first, or unmount it / `kpartx -d /dev/{lv.vg}/{lv.name}` on the host; "
            "nothing was changed")


def _unannounced_grows(effects: list[Effect], run: RunState) -> list[Refusal]:
    told = {(e.host, e.obj) for e in effects if e.action == "blockresize"}
    out = []
    for (host, guest), index in sorted(run.grown.items()):
        if (host, guest) not in told:
            eff = next(e for e in effects if e.index == index)
            out.append(_no(eff, "grow-running", f"grows a disk of the running guest {guest} without telling it",
                           "the plan must also run `virsh blockresize` for that disk"))
    run.grown.clear()
    return out


# -- held disks --------------------------------------------------------------------------------


def _held(eff: Effect, now: Now, ctx: Context) -> list[Refusal]:
    source = eff.obj
    if source not in ctx.writable:
        return [_no(eff, "held-disk", f"{source} is not held for writing by this run")]
    users = now.users(source if source.startswith("/") else f"/dev/{source}", running=True)
    if users:
        return [_no(eff, "held-disk", f"{source} is the disk of the running guest {', '.join(users)}",
                    "shut it down first")]
    return []


# -- guests --------------------------------------------------------------------------------------


def _guest(eff: Effect, now: Now) -> list[Refusal]:
    name, key, a = eff.obj, now.key(eff.obj), eff.action
    known, active = now.defined(name), now.running(name)
    if a == "define":
        return _define(eff, now, active)
    if a == "undefine":
        out = [] if known and not active else [_no(eff, "guest-state", f"undefine of {name}: " + (
            "it runs" if active else "not defined"), f"shut {name} down first" if active else "")]
        out += [] if eff.target == name else [_no(eff, "confirm", f"undefine of {name} without its target")]
        now.run.undefined.add(key)
        now.run.defined.pop(key, None)
        return out
    if a in ("destroy", "shutdown"):
        out = [] if active else [_no(eff, "guest-state", f"{a} of {name}, which is not running")]
        if a == "destroy" and eff.target != name:
            out.append(_no(eff, "confirm", f"destroy of {name} without its target"))
        now.run.stopped.add(key)
        now.run.started.discard(key)
        return out
    if a == "start":
        return _start(eff, now, known, active)
    if a in ("autostart", "eject", "blockresize"):
        return [] if known else [_no(eff, "guest-state", f"{a} of {name}, which is not defined")]
    return [_no(eff, "known", f"a libvirt call the rules do not know: {a}")]


def _start(eff: Effect, now: Now, known: bool, active: bool) -> list[Refusal]:
    name, key = eff.obj, now.key(eff.obj)
    if not known or active:
        return [_no(eff, "guest-state", f"start of {name}, which " + ("is not defined" if not known else "runs"))]
    xml = now.xml(name) or ""
    try:
        read_domain(xml)
    except Exception as exc:
        return [_no(eff, "start-free", f"guest {name} cannot start: its definition cannot be read ({exc})",
                    "look at `virsh dumpxml`")]
    out = [_no(eff, "start-free", f"guest {name} cannot start: {why}", way_out)
           for source in now.sources(name) for why, way_out in _blockers(name, source, now)]
    now.run.started.add(key)
    now.run.stopped.discard(key)
    return out


def _blockers(name: str, source: str, now: Now) -> list[tuple[str, str]]:
    out = []
    path = lv_path(source)
    if source in now.held or (path and path in now.held):
        out.append((f"its disk {source} is held (mapped) by this run", "the run must release it first"))
    others = [g for g in now.users(source, running=True) if g != name]
    if others:
        out.append((f"its disk {source} is the disk of the running guest {', '.join(others)}",
                    f"shut {', '.join(others)} down first; two guests must never share a disk"))
    if path is None or not path.startswith(now.facts.site.vg + "/"):
        return out
    lv = now.lv(path)
    if lv is None:
        return out  # a missing disk is libvirt's to refuse: nothing is in use
    flag = now.open_state(lv)
    if flag is None:
        out.append((f"LVM cannot tell whether its disk /dev/{path} is open (attributes {lv.attr!r})",
                    "check `lvs -o lv_name,lv_attr` on the host"))
    elif flag and not others:
        out.append((f"its disk /dev/{path} is open on the host (a kpartx mapping, a mount, or a process holds it)",
                    f"undo it first: `kpartx -d /dev/{path}` (after `umount` of its partitions), or stop the process "
                    "that holds it (`dmsetup ls`, `lsblk`); then start the guest"))
    merging = now.merging(lv)
    if merging:
        out.append((f"its disk /dev/{path} is mid-merge ({', '.join(merging)})",
                    f"wait for the merge to finish (`lvs -a {now.facts.site.vg}`; host-recovery waits for it)"))
    bad = [s.path for s in now.snapshots(lv) if s.invalid]
    if bad:
        out.append((f"its disk /dev/{path} is the origin of the invalid snapshot {', '.join(bad)}",
                    "remove the overflowed snapshot first (lv-remove); its data is lost anyway"))
    return out


def _define(eff: Effect, now: Now, active: bool) -> list[Refusal]:
    name, key, xml = eff.obj, now.key(eff.obj), str(eff.detail or "")
    out = [_no(eff, "xml-policy", f"the definition of {name}: {why}", "fix the XML (or the backup)")
           for why in xml_refusals(xml, now.facts.site, name)]
    info = now.facts.domain(name) if now.defined(name) and key not in now.run.defined else None
    old = now.xml(name) if now.defined(name) else None  # also as this run defined it (then started it)
    if active and (old is None or _changes(old, xml)):  # ejecting media is no redefinition
        out.append(_no(eff, "guest-state", f"redefining the running guest {name}", f"shut {name} down first"))
    had = {_disk_key(s) for s in now.sources(name)}
    if info is not None and _changes(info.inactive_xml or info.xml, xml) and eff.target != name:
        out.append(_no(eff, "confirm", f"replaces the differing definition of {name} without its target"))
    if not out or all(r.rule == "confirm" for r in out):
        out += _define_disks(eff, now, xml, had)
    out += _define_macs(eff, now, xml)
    now.run.defined[key] = xml
    now.run.undefined.discard(key)
    return out


def _lines(xml: str) -> tuple[str, ...]:
    try:
        return tuple(read_domain(xml).lines())
    except Exception:  # unreadable: differs from anything
        return (xml,)


def _changes(old: str, new: str) -> bool:
    """The new definition differs from the old beyond an emptied CD-ROM drive (retiring a
    NoCloud seed takes it out of the definition: nothing of the guest's is lost)."""
    a, b = _lines(old), _lines(new)
    if a == b:
        return False
    emptied = tuple("cdrom: (empty)" if ln.startswith("cdrom: ") else ln for ln in a)
    return emptied != b


def _define_macs(eff: Effect, now: Now, xml: str) -> list[Refusal]:
    others = {g: {m for x in {now.xml(g), now.live_xml(g)} if x for m in macs_of(x)}
              for g in now.guests() if g != eff.obj}
    return [_no(eff, "mac", f"guest {eff.obj} would have the MAC address {shared}",
                "give the NIC another MAC (kvmops chooses a free one when none is given)")
            for shared in collisions(macs_of(xml), others)]


def _define_disks(eff: Effect, now: Now, xml: str, had: set[str]) -> list[Refusal]:
    out = []
    for source in _sources(xml):
        key = _disk_key(source)
        if key in had:
            continue
        vg, _, lv = key.partition("/")
        if vg == now.facts.site.vg and not now.facts.site.is_guest_lv(lv):
            out.append(_no(eff, "define-disks", f"guest {eff.obj} would get the host LV {key}"))
        others = [g for g in now.users(source, running=False) if g != eff.obj]
        if others:
            out.append(_no(eff, "define-disks", f"guest {eff.obj} would share {key} with {', '.join(others)}"))
    return out


# -- bridges and files ---------------------------------------------------------------------------


def _bridge(eff: Effect, facts: HostFacts) -> list[Refusal]:
    try:
        net = facts.net
    except Exception:
        return [_no(eff, "bridge", "a bridge change judged without the host's network facts")]
    bridge = _bridge_of(eff, net)
    if eff.action == "delete-bridge":
        return _delete_bridge(eff, facts, bridge)
    if eff.action == "up" and not _is_port(eff.obj, net):
        taps = [lk.name for lk in net.ports(bridge) if lk.kind == "tun" or lk.name.startswith("vnet")]
        if taps:
            return [_no(eff, "bridge", f"re-activating {bridge} detaches its guest ports ({', '.join(taps)})",
                        "stop or move its guests first")]
    return []


def _is_port(uuid: str, net: object) -> bool:
    """A VLAN port profile: activating it leaves the bridge's other ports alone."""
    from kvmops.net.facts import NetFacts

    assert isinstance(net, NetFacts)
    return any(p.uuid == uuid and p.type == "vlan" for p in net.profiles)


def _bridge_of(eff: Effect, net: object) -> str:
    from kvmops.net.facts import NetFacts

    assert isinstance(net, NetFacts)
    if eff.action in ("add", "up-new", "reapply"):
        return eff.obj
    prof = next((p for p in net.profiles if p.uuid == eff.obj or p.id == eff.obj), None)
    if prof is None:
        return eff.obj
    if prof.type == "bridge":
        return prof.interface_name
    owner = next((p for p in net.profiles if p.type == "bridge" and prof.master in (p.id, p.uuid, p.interface_name)),
                 None)
    return owner.interface_name if owner else prof.master or prof.interface_name


def _delete_bridge(eff: Effect, facts: HostFacts, bridge: str) -> list[Refusal]:
    out = []
    if not guest_bridge_pattern(facts.site).match(bridge):
        out.append(_no(eff, "bridge", f"{bridge} is not a guest bridge of the site: kvmops never deletes it"))
    users = [facts.bridges_in_use[bridge]] if bridge in facts.bridges_in_use else []
    users += [lk.name for lk in facts.net.ports(bridge) if not lk.is_vlan]
    if users:
        out.append(_no(eff, "bridge", f"{bridge} is in use ({'; '.join(users)})", "move or undefine its guests first"))
    if eff.target != bridge:
        out.append(_no(eff, "confirm", f"deletes {bridge} without it as its target"))
    return out


def _folders(facts: HostFacts) -> tuple[str, ...]:
    s = facts.site
    return tuple(f for f in (s.xml_dir, s.seed_dir, s.boot_dir, s.file_disk_dir) if f)


def _file(eff: Effect, facts: HostFacts, ctx: Context) -> list[Refusal]:
    import os

    path = os.path.normpath(eff.obj) if eff.obj.startswith("/") else eff.obj
    allowed = (*_folders(facts), *([ctx.places[eff.host]] if eff.host in ctx.places else ()))
    if not any(path.startswith(f.rstrip("/") + "/") for f in allowed):
        return [_no(eff, "files", f"{eff.obj} is outside kvmops' folders on {eff.host} ({', '.join(allowed)})")]
    out = []
    s = facts.site
    if eff.action == fx.FILE_WRITE and os.path.dirname(path) == os.path.normpath(s.xml_dir) and path.endswith(".xml"):
        guest = os.path.basename(path)[: -len(".xml")]
        kept = facts.files.get(path)
        if kept is not None and eff.detail is not None and kept != eff.detail and eff.target != guest \
                and _changes(kept, str(eff.detail)):
            out.append(_no(eff, "confirm", f"replaces the differing kept XML {path} without the target {guest!r}"))
    return out


def _peer(eff: Effect, ctx: Context) -> list[Refusal]:
    """An effect on a host without host facts: a backup place; only files in its folder."""
    import os

    if eff.action in fx.REPO_ACTIONS:
        return _repo(eff, ctx)
    place = ctx.places.get(eff.host)
    path = os.path.normpath(eff.obj) if eff.obj.startswith("/") else eff.obj
    if place and eff.action in (fx.FILE_WRITE, fx.FILE_RETIRE, fx.FILE_REMOVE, fx.DIR_MAKE) and (
            path == os.path.normpath(place) or path.startswith(place.rstrip("/") + "/")):
        return []
    return [_no(eff, "files", f"{eff.action} of {eff.obj} on {eff.host}, which the run only knows as a backup place "
                              f"({place or 'none'})")]


def _repo(eff: Effect, ctx: Context) -> list[Refusal]:
    """A backup engine's repository: only the run's (the place it was given for that host);
    a prune only of the guest its step names as its target."""
    repo = ctx.places.get(eff.host)
    out = []
    if eff.obj != repo:
        out.append(_no(eff, "files", f"{eff.action} in the backup repository {eff.obj} on {eff.host}, which is not "
                                     f"this run's ({repo or 'none'})"))
    if eff.action == fx.REPO_PRUNE and eff.target != eff.detail:
        out.append(_no(eff, "confirm", f"prunes {eff.detail}'s backups without {eff.detail!r} as its target"))
    return out


def judge_hold(source: str, write: bool, facts: HostFacts, run: RunState, host: str) -> list[Refusal]:
    """A disk a phase maps (and mounts): an LV of the site's guests, not in use; an image file
    that no running guest has as its disk. Reading holds are judged the same way: a mapping
    of a running guest's disk reads data in flux."""
    what = f"{'map for writing' if write else 'map read-only'} {source}"
    eff = Effect(fx.LV_OVERWRITE if write else "hold", source, host, 0, what)
    now = Now(facts, run, host)
    if source.startswith("/"):
        users = now.users(source, running=True)
        return [_no(eff, "lv-free", f"{source} is the disk of the running guest {', '.join(users)}",
                    "shut it down first")] if users else []
    vg, _, name = source.partition("/")
    if vg != facts.site.vg or not facts.site.is_guest_lv(name):
        return [_no(eff, "guest-lv", f"{source} is no guest LV of the site's VG {facts.site.vg}")]
    lv = now.lv(source)
    if lv is None:
        return [_no(eff, "lv-exists", f"{source} does not exist")]
    why = now.in_use(lv)
    return [_no(eff, "lv-free", f"{source} is in use: {why}", _free_way_out(lv))] if why else []
