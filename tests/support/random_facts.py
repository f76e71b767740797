"""Random hosts for the safety properties: hypothesis strategies that build a whole
:class:`~kvmops.hostfacts.HostFacts` together with an oracle (:class:`World`) that knows, from
how the host was built and not from kvmops' own guards, which LVs are in use, which are host
LVs and which bridges guests use.

A world has, at random:

- the site's VG with the host LVs (root, home, opt, swap) and guest LVs from a small pool
  (so that the names the properties ask about exist often), each with LVM's open flag open,
  closed or unknown (``X``) and activation known or disabled; snapshots of guest LVs that are
  valid, overflowed (invalid) or being merged; now and then LVs of another VG in the report;
- guests that run, are paused or are shut off, with disks that are LVs of the VG (by
  ``/dev/VG/LV`` or ``/dev/mapper`` name, host LVs and snapshots included), LVs of another VG,
  missing LVs or image files, and NICs on the site's bridges or others; disks shared between
  guests (a guest naming another one's LV, both off or one running); the LV of a shut-off
  guest left open on the host (a ``kpartx -a`` mapping, as the guide's 4.3 leaves it);
- the network: bridge and VLAN port profiles, kernel links, guest taps and other ports;
- the kept XML files, the boot files, the guests' libvirt logs and the host's boot time;
- domain XML for new definitions (:meth:`World.definition`, :mod:`tests.support.random_xml`):
  the template kvmops renders, clean variants, and hostile ones (host devices and folders,
  another guest's disk, host files or sockets, ``qemu:commandline``, ...), each labelled with
  what was put in it.

Everything is pure data: no I/O. A world is built from one hypothesis draw of bytes
(:class:`Dice`): thousands of worlds per second, and a failing case still shrinks (towards
zero bytes, i.e. the first, simplest option of every choice).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from hypothesis import strategies as st

from kvmops.guests import hostfile
from kvmops.guests.domain import DomainInfo, HostLimits
from kvmops.guests.history import PROC_STAT
from kvmops.hostfacts import HostFacts
from kvmops.images.probe import ImageInfo
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.net.facts import NetFacts
from kvmops.net.iplink import Link
from kvmops.net.nmcli import Profile
from kvmops.site import load_site
from tests.support import random_xml

SITE = load_site()
VG_NAME = SITE.vg
OTHER_VG = "data"
PREFIX = SITE.lv_prefix
HOST_LVS = ("root", "home", "opt", "swap")
GUESTS = ("web1", "db1", "test1", "big", "web-2")
GUEST_LVS = tuple(f"{PREFIX}{g}" for g in GUESTS)
NEW_GUESTS = ("new1", "new2")  # names no world defines
SITE_BRIDGES = tuple(sorted(n.bridge for n in SITE.networks))
HOST_BRIDGES = ("br0", "virbr0")
ALL_BRIDGES = (*SITE_BRIDGES, "virbr1.99", *HOST_BRIDGES)
UPLINK = SITE.uplink
GiB = 1 << 30
EXTENT = 4 << 20
BOOT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
IMAGE = "/var/lib/kvmops/images/cloud.qcow2"
LIMITS = HostLimits(memory_kib=64 * 1024 * 1024, cpus=16, max_vcpus=16)
T = TypeVar("T")


def snap_name(origin: str, i: int) -> str:
    return f"{origin}-2024100{i + 1}T1518Z"


@dataclass(frozen=True)
class World:
    """A random host and the truth about it, kept while building it."""

    facts: HostFacts
    open_flag: dict[str, str]  # LV of the site's VG -> its open flag: "o", "-" or "X" (unknown)
    running_disks: frozenset[str]  # LVs of the site's VG a running or paused guest has as a disk
    defined_disks: frozenset[str]  # LVs of the site's VG any defined guest names
    bridges_used: frozenset[str]  # named by a defined guest, or with a port that is no VLAN port
    bridges_plugged: frozenset[str]  # with a port in the kernel that is no VLAN port
    bridges_tapped: frozenset[str]  # with a guest's port (a tap: vnetN, tapN) in the kernel
    activation_disabled: bool
    domains: dict[str, bool] = field(default_factory=dict)  # guest -> active
    disks_of: dict[str, frozenset[str]] = field(default_factory=dict)  # guest -> LVs of the site's VG it names
    dice: Dice | None = field(default=None, repr=False, compare=False)  # the case's further choices
    sources_of: dict[str, tuple[str, ...]] = field(default_factory=dict)  # guest -> its disks' source paths
    mapped: frozenset[str] = frozenset()  # LVs of shut-off guests left open on the host (kpartx -a)
    merging: frozenset[str] = frozenset()  # LVs mid-merge: origins being merged into, merging snapshots
    invalid_of: dict[str, tuple[str, ...]] = field(default_factory=dict)  # origin -> its overflowed snapshots

    def pick(self, options: Sequence[T]) -> T:
        """One of ``options``, chosen by the case (the dice that built the world, going on)."""
        assert self.dice is not None
        return self.dice.pick(options)

    def maybe(self, yes: int, of: int) -> bool:
        assert self.dice is not None
        return self.dice.maybe(yes, of)

    def lv_in_use(self, name: str) -> bool | None:
        """True: a running guest's disk or open; None: LVM cannot tell and nothing else says so."""
        if name in self.running_disks:
            return True
        flag = self.open_flag.get(name, "-")
        if flag == "o":
            return True
        if flag == "X":
            return False if self.activation_disabled else None
        return False

    def lv_free(self, name: str) -> bool:
        """Certainly in use by nothing (unknown counts as in use)."""
        return self.lv_in_use(name) is False

    @staticmethod
    def guest_lv(name: str) -> bool:
        return name.startswith(PREFIX) and name != PREFIX and name not in HOST_LVS

    def definition(self, guest: str, d: Dice | None = None) -> random_xml.Definition:
        """A domain XML for defining ``guest``: clean or hostile, chosen by ``d`` (else the case's dice)."""
        chooser = d or self.dice
        assert chooser is not None
        others = [g for g in GUESTS if g != guest]
        return random_xml.definition(chooser, SITE, guest, others, HOST_LVS[0], OTHER_VG)


# -- the dice: one hypothesis draw per world -----------------------------------------------


class Dice:
    """Choices read from bytes that hypothesis draws once per case (one draw is ~100x faster
    than a draw per choice). A zero byte picks the first option, so hypothesis shrinks a
    failing case towards first options: order each option list simplest and harmless first."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def byte(self) -> int:
        b = self.data[self.at % len(self.data)] if self.at < 4 * len(self.data) else 0
        self.at += 1
        return b

    def pick(self, options: Sequence[T]) -> T:
        return options[self.byte() % len(options)]

    def maybe(self, yes: int, of: int) -> bool:
        """True ``yes`` times in ``of`` (on average)."""
        return self.byte() % of >= of - yes

    def some(self, options: Sequence[T], most: int) -> list[T]:
        """Up to ``most`` different options, in their order."""
        n = self.byte() % (most + 1)
        return [o for o in options if self.maybe(n, len(options))][:most] if n else []


DICE_BYTES = 160


def dice() -> st.SearchStrategy[Dice]:
    return st.binary(min_size=DICE_BYTES, max_size=DICE_BYTES).map(Dice)


# -- LVM ---------------------------------------------------------------------------------------

OPEN = "-----oX"  # mostly closed, so that operations are accepted often
SNAP_KINDS = ("valid", "valid", "invalid", "merging")


def _attr(kind: str, open_flag: str, active: str) -> str:
    return f"{kind}wi-{active}{open_flag}{'s' if kind in 'sS' else '-'}---"


@dataclass
class LvmTruth:
    """How the LVM report was made: open flags, merges, overflowed snapshots."""

    opens: dict[str, str] = field(default_factory=dict)
    merging: set[str] = field(default_factory=set)
    invalid_of: dict[str, tuple[str, ...]] = field(default_factory=dict)


def lvm_state(d: Dice) -> tuple[LvmState, LvmTruth, bool]:
    disabled = d.maybe(1, 4)
    lvs: list[LV] = []
    truth = LvmTruth()
    opens = truth.opens

    def add(name: str, kind: str, size: int, origin: str = "", percent: float | None = None,
            flag: str | None = None, day: int = 1, state: str = "") -> None:
        flag = flag if flag is not None else d.pick(OPEN)
        active = "X" if flag == "X" else ("a" if flag == "o" else d.pick("aa-"))
        opens[name] = flag
        lvs.append(LV(name, VG_NAME, _attr(kind, flag, state or active), size, origin, percent,
                      datetime(2024, 10, day, 15, 18, tzinfo=UTC)))

    for name in HOST_LVS:
        add(name, "-", d.pick((50, 8)) * GiB)
    for name in GUEST_LVS:
        if d.maybe(1, 4):
            continue
        size = d.pick((10, 1, 20)) * GiB
        kinds = [d.pick(SNAP_KINDS) for _ in range(d.pick((0, 1, 1, 2)))]
        add(name, "O" if "merging" in kinds else ("o" if kinds else "-"), size)
        for i, k in enumerate(kinds):
            flag = "-" if k != "merging" else d.pick("-X")
            percent = 100.0 if k == "invalid" else d.pick((0.5, 50.0, 79.9, 80.0, 95.0))
            add(snap_name(name, i), "S" if k == "merging" else "s", d.pick((1, 2)) * GiB, name, percent, flag,
                i + 1, "I" if k == "invalid" else "")
        if "merging" in kinds:
            truth.merging |= {name, *(snap_name(name, i) for i, k in enumerate(kinds) if k == "merging")}
        if "invalid" in kinds:
            truth.invalid_of[name] = tuple(snap_name(name, i) for i, k in enumerate(kinds) if k == "invalid")
    if d.maybe(1, 4):  # a report that also lists another VG
        other = d.pick(GUEST_LVS)
        lvs.append(LV(other, OTHER_VG, "-wi-ao----", GiB, "", None, None))
        lvs.append(LV(snap_name(other, 5), OTHER_VG, "swi-a-s---", GiB, other, 99.0, None))
    free = d.pick((500, 200, 30, 0)) * GiB
    return LvmState(VG(VG_NAME, 1000 * GiB, free, EXTENT, len(lvs)), tuple(lvs), disabled), truth, disabled


def left_open(lvm: LvmState, opens: dict[str, str], name: str) -> LvmState:
    """``lvm`` with the LV ``name`` active and open, as a ``kpartx -a`` mapping (or a mount of
    one of its partitions) leaves it: LVM's open flag ``o``."""
    def opened(lv: LV) -> LV:
        return replace(lv, attr=f"{lv.attr[:4]}ao{lv.attr[6:]}") if lv.name == name and lv.vg == VG_NAME else lv

    opens[name] = "o"
    return replace(lvm, lvs=tuple(opened(lv) for lv in lvm.lvs))


# -- guests ------------------------------------------------------------------------------------


def _mapper(name: str) -> str:
    return f"/dev/mapper/{VG_NAME.replace('-', '--')}-{name.replace('-', '--')}"


DISK_KINDS = ("own", "own", "own", "lv", "mapper", "other", "file", "missing", "shared", "shared")


def disk_source(d: Dice, own: str, names: list[str], shared: list[str]) -> tuple[str, str | None]:
    """One disk: (source path, LV of the site's VG it is, or None). ``shared``: the LVs of the
    other guests (a disk shared between two guests)."""
    kind = d.pick(DISK_KINDS)
    if kind == "own" or (kind == "shared" and not shared):
        return f"/dev/{VG_NAME}/{own}", own
    if kind == "shared":
        lv = d.pick(shared)
        return (f"/dev/{VG_NAME}/{lv}" if d.maybe(2, 3) else _mapper(lv)), lv
    if kind in ("lv", "mapper"):
        lv = d.pick(names)
        return (f"/dev/{VG_NAME}/{lv}" if kind == "lv" else _mapper(lv)), lv
    if kind == "other":
        return f"/dev/{OTHER_VG}/{d.pick(GUEST_LVS)}", None
    if kind == "missing":
        return f"/dev/{VG_NAME}/{PREFIX}gone", f"{PREFIX}gone"
    return f"/var/lib/libvirt/images/{own}.qcow2", None


def domain_xml(name: str, disks: list[str], bridges: list[str], uuid: int) -> str:
    devs = "".join(
        f"<disk type='block' device='disk'><source dev='{p}'/><target dev='vd{chr(97 + i)}'/></disk>"
        if p.startswith("/dev/") else
        f"<disk type='file' device='disk'><source file='{p}'/><target dev='vd{chr(97 + i)}'/></disk>"
        for i, p in enumerate(disks))
    devs += "".join(f"<interface type='bridge'><source bridge='{b}'/><model type='virtio'/></interface>"
                    for b in bridges)
    return (f"<domain type='kvm'><name>{name}</name><uuid>00000000-0000-0000-0000-{uuid:012d}</uuid>"
            f"<memory unit='KiB'>1048576</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>"
            f"<devices>{devs}</devices></domain>")


STATES = ("shut off", "running", "shut off", "paused", "running", "shut off")


def guests(d: Dice, lv_names: list[str]) -> tuple[tuple[DomainInfo, ...], dict[str, list[str | None]]]:
    chosen = d.some(GUESTS, 4) or [d.pick(GUESTS)]
    out: list[DomainInfo] = []
    lvs_of: dict[str, list[str | None]] = {}
    for i, name in enumerate(chosen):
        shared = [f"{PREFIX}{g}" for g in chosen if g != name]
        pairs = [disk_source(d, f"{PREFIX}{name}", lv_names, shared) for _ in range(d.pick((1, 1, 2, 0)))]
        bridges = d.some(ALL_BRIDGES, 2)
        state = d.pick(STATES)
        xml = domain_xml(name, [p for p, _ in pairs], bridges, i)
        out.append(DomainInfo(name, state, state != "shut off", d.maybe(1, 2), True, xml, xml))
        lvs_of[name] = [lv for _, lv in pairs]
    return tuple(out), lvs_of


# -- the network -------------------------------------------------------------------------------

SHAPES = ("full", "full", "none", "full", "profile-only", "link-only")


def net(d: Dice) -> tuple[NetFacts, frozenset[str], frozenset[str]]:
    """Bridges with profiles (or without), their VLAN ports, other ports; which have a
    non-VLAN port, which a guest's tap."""
    profiles: list[Profile] = []
    links: list[Link] = []
    plugged: set[str] = set()
    tapped: set[str] = set()
    if not d.maybe(1, 4):
        links.append(Link(UPLINK, 2, up=True))
    for i, bridge in enumerate(ALL_BRIDGES):
        shape = d.pick(SHAPES)
        if shape == "none":
            continue
        vid = 4000 + i if "." not in bridge else int(bridge.rsplit(".", 1)[1])
        if shape != "link-only":
            active = shape == "full" and not d.maybe(1, 3)
            profiles.append(Profile(bridge, f"uuid-b{i}", "bridge", bridge, stp=d.maybe(1, 2),
                                    ageing_time=d.pick((0, 0, 300)), ipv4_method="disabled",
                                    ipv6_method=d.pick(("disabled", "auto")), device=bridge if active else ""))
            if d.maybe(1, 2):
                profiles.append(Profile(f"{bridge}-port", f"uuid-p{i}", "vlan", f"{UPLINK}.{vid}", master=bridge,
                                        slave_type="bridge", vlan_id=vid, vlan_parent=UPLINK))
        if shape != "profile-only":
            links.append(Link(bridge, 10 + i, kind="bridge", ageing_cs=d.pick((0, 30000))))
            if d.maybe(1, 2):
                links.append(Link(f"{UPLINK}.{vid}", 100 + i, kind="vlan", master=bridge, vlan_id=vid))
            if d.maybe(1, 3):
                kind = d.pick(("tun", "vnet", "veth"))
                name = {"tun": f"tap{i}", "vnet": f"vnet{i}", "veth": f"veth{i}"}[kind]
                links.append(Link(name, 200 + i, kind={"vnet": "tun"}.get(kind, kind), master=bridge))
                plugged.add(bridge)
                if kind != "veth":
                    tapped.add(bridge)
    nm = not d.maybe(1, 5)
    return NetFacts(profiles=tuple(profiles), links=tuple(links), nm_running=nm,
                    nm_error="" if nm else "NetworkManager is not running"), frozenset(plugged), frozenset(tapped)


# -- files and logs ----------------------------------------------------------------------------


def _log(started: bool, stopped: bool) -> str:
    lines = []
    if started:
        lines.append("2026-11-30 07:00:00.000+0000: starting up libvirt version: 10.0.0, qemu version: 8.2.0")
    if started and stopped:
        lines.append("2026-11-30 07:30:00.000+0000: shutting down, reason=shutdown")
    return "\n".join(lines) + "\n"


def host_files(d: Dice, domains: tuple[DomainInfo, ...]) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """The kept XML file of every guest name (none, the definition, or another one), the
    host's boot time, and each guest's libvirt log."""
    by_name = {x.name: x for x in domains}
    files: dict[str, str | None] = {PROC_STAT: f"cpu  1 2 3\nbtime {int(BOOT.timestamp())}\n"}
    for name in (*GUESTS, *NEW_GUESTS):
        kept = d.pick(("none", "same", "other"))
        dom = by_name.get(name)
        files[hostfile.xml_path(SITE, name)] = (None if kept == "none" else
                                                dom.xml if kept == "same" and dom else domain_xml(name, [], [], 99))
    logs = {x.name: _log(d.maybe(1, 2), d.maybe(1, 2)) if d.maybe(1, 2) else None for x in domains}
    return files, logs


# -- a whole world -----------------------------------------------------------------------------


def build_world(d: Dice) -> World:
    lvm, truth, disabled = lvm_state(d)
    names = [lv.name for lv in lvm.lvs if lv.vg == VG_NAME]
    domains, lvs_of = guests(d, names)
    mapped = _kpartx(d, lvm, domains, lvs_of)
    for name in mapped:
        lvm = left_open(lvm, truth.opens, name)
    net_facts, plugged, tapped = net(d)
    files, logs = host_files(d, domains)
    image = ImageInfo(IMAGE, d.pick(("qcow2", "raw")), d.pick((GiB // 2, 5 * GiB, 15 * GiB)))
    running = {lv for x in domains if x.active for lv in lvs_of[x.name] if lv}
    defined = {lv for x in domains for lv in lvs_of[x.name] if lv}
    named = {b for x in domains for b in _bridges(x.xml)}
    facts = HostFacts(site=SITE, lvm=lvm, domains=domains, limits=LIMITS, read_at=BOOT.isoformat(),
                      net_facts=net_facts, files=files, images={IMAGE: image},
                      paths={p: v is not None for p, v in files.items()}, guest_logs_read=logs)
    return World(facts, truth.opens, frozenset(running), frozenset(defined), frozenset(named | plugged), plugged,
                 tapped, disabled, {x.name: x.active for x in domains},
                 {name: frozenset(lv for lv in lvs if lv) for name, lvs in lvs_of.items()}, d,
                 {x.name: _sources(x.xml) for x in domains}, mapped, frozenset(truth.merging), truth.invalid_of)


def _kpartx(d: Dice, lvm: LvmState, domains: tuple[DomainInfo, ...], lvs_of: dict[str, list[str | None]]) \
        -> frozenset[str]:
    """Now and then the LV of a shut-off guest is left mapped (``kpartx -a``, guide 4.3). Not
    one a running guest shares: LVM's open flag cannot tell who holds an LV open, and kvmops
    counts the flag of a running guest's disk as that guest's."""
    running = {lv for x in domains if x.active for lv in lvs_of[x.name]}
    off = [f"{PREFIX}{x.name}" for x in domains if not x.active and lvm.get(f"{PREFIX}{x.name}")
           and f"{PREFIX}{x.name}" not in running]
    return frozenset([d.pick(off)]) if off and d.maybe(1, 3) else frozenset()


def _sources(xml: str) -> tuple[str, ...]:
    return tuple(part.split("'", 1)[0] for part in re.split(r"<source (?:dev|file)='", xml)[1:])


def worlds() -> st.SearchStrategy[World]:
    """A random world; its :attr:`World.dice` goes on with the choices of the case (names, sizes)."""
    return dice().map(build_world)


def _bridges(xml: str) -> list[str]:
    return [part.split("'", 1)[0] for part in xml.split("<source bridge='")[1:]]
