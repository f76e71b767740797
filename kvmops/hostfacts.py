"""The host at one moment, as plans see it: :class:`HostFacts`, an immutable value (pure).

:func:`kvmops.facts.read_facts` reads it, once per decision: the LVM report of the site's VG
(with each LV's open flag), every libvirt domain with its state and both XML forms, the
host's limits, and on request (:class:`Wanted`) the network facts, some files and some
images. Operations take a :class:`HostFacts` as a required argument and do no I/O; the
guards and the safety gate ask it whether an LV or a bridge is in use.

A safety input that cannot be read is never replaced by a weaker one: when LVM cannot tell
whether an LV is open, asking refuses with :class:`FactsUnavailable`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from kvmops.errors import KvmopsError, SafetyError
from kvmops.guests.domain import DomainInfo, HostLimits
from kvmops.guests.xml import macs_of, read_domain
from kvmops.images.disk import Disk
from kvmops.images.mount import RootFs
from kvmops.images.probe import ImageInfo
from kvmops.lvm.facts import LV
from kvmops.lvm.paths import lv_path
from kvmops.lvm.state import LvmState
from kvmops.net.facts import NetFacts
from kvmops.site import Site


class FactsUnavailable(KvmopsError):
    """A fact that a safety decision needs could not be read: nothing is planned or changed."""


class FactsIncomplete(KvmopsError):
    """A plan asked for a fact that was not read (a bug: the caller must ask read_facts for it)."""


@dataclass(frozen=True)
class Wanted:
    """What to read besides LVM, domains and limits (which are always read)."""

    net: bool = False
    files: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # only whether they exist
    guest_logs: bool = False  # the tail of each guest's libvirt log, and the host's boot time

    def __or__(self, other: Wanted) -> Wanted:
        return Wanted(self.net or other.net, _merge(self.files, other.files), _merge(self.images, other.images),
                      _merge(self.paths, other.paths), self.guest_logs or other.guest_logs)


def _merge(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*a, *b)))


@dataclass(frozen=True)
class Held:
    """A disk this run holds for a phase: attached (``disk``), its root mounted (``root``, or
    None), read-write when ``write``; ``data``: what the phase read from it (its partition
    table and sizes, the files it wants)."""

    source: str  # VG/LV or an image file
    write: bool
    disk: Disk
    root: RootFs | None = None
    data: object = None


@dataclass(frozen=True)
class HostFacts:
    """The host at one moment, as plans see it. Immutable; derived views are cached."""

    site: Site
    lvm: LvmState
    domains: tuple[DomainInfo, ...]
    limits: HostLimits
    read_at: str
    net_facts: NetFacts | None = None
    files: Mapping[str, str | None] = field(default_factory=dict)
    images: Mapping[str, ImageInfo] = field(default_factory=dict)
    paths: Mapping[str, bool] = field(default_factory=dict)
    guest_logs_read: Mapping[str, str | None] | None = None
    held: Held | None = None  # the disk the phase holds (kvmops.executor.Hold)

    # -- what was read ------------------------------------------------------------------------

    @property
    def net(self) -> NetFacts:
        if self.net_facts is None:
            raise FactsIncomplete("the network facts were not read: read_facts(..., Wanted(net=True))")
        return self.net_facts

    def file(self, path: str) -> str | None:
        """The text of a file on the host, None when it does not exist."""
        if path not in self.files:
            raise FactsIncomplete(f"the file {path} was not read: read_facts(..., Wanted(files=(...,)))")
        return self.files[path]

    def lv_size(self, path: str) -> int | None:
        """The size in bytes of the LV ``VG/NAME`` of the site's VG, None when there is no such LV."""
        vg, _, name = path.partition("/")
        lv = self.lvm.get(name) if vg == self.site.vg else None
        return lv.size if lv is not None else None

    def exists(self, path: str) -> bool:
        """Whether a path exists on the host (a read file counts)."""
        if path in self.files:
            return self.files[path] is not None
        if path not in self.paths:
            raise FactsIncomplete(f"whether {path} exists was not read: read_facts(..., Wanted(paths=(...,)))")
        return self.paths[path]

    def guest_log(self, name: str) -> str | None:
        """The last lines of a guest's libvirt log (None: it has none)."""
        if self.guest_logs_read is None:
            raise FactsIncomplete("the guests' libvirt logs were not read: read_facts(..., Wanted(guest_logs=True))")
        return self.guest_logs_read.get(name)

    def image(self, path: str) -> ImageInfo:
        if path not in self.images:
            raise FactsIncomplete(f"the image {path} was not probed: read_facts(..., Wanted(images=(...,)))")
        return self.images[path]

    def holding(self) -> Held:
        """The disk the phase holds (a phase with a :class:`kvmops.executor.Hold`)."""
        if self.held is None:
            raise FactsIncomplete("this phase holds no disk: give its Phase a Hold")
        return self.held

    def domain(self, name: str) -> DomainInfo | None:
        return self._domains_by_name.get(name)

    @cached_property
    def _domains_by_name(self) -> dict[str, DomainInfo]:
        return {d.name: d for d in self.domains}

    # -- what is in use -----------------------------------------------------------------------

    @cached_property
    def disks_of(self) -> dict[str, tuple[str, ...]]:
        """Guest name -> the ``VG/LV`` paths of its disks (every defined guest)."""
        out: dict[str, tuple[str, ...]] = {}
        for d in self.domains:
            paths = (lv_path(s) for s in read_domain(d.xml).disk_sources)
            out[d.name] = tuple(p for p in paths if p)
        return out

    @cached_property
    def running_disks(self) -> dict[str, str]:
        """``VG/LV`` -> the running (or paused) guest that has it as a disk."""
        return {p: d.name for d in self.domains if d.active for p in self.disks_of[d.name]}

    def running_guests_with_file(self, path: str) -> tuple[str, ...]:
        """Running guests that have the file ``path`` as a disk (an image file, not an LV)."""
        want = os.path.normpath(path)
        return tuple(d.name for d in self.domains if d.active
                     and any(os.path.normpath(s) == want for s in read_domain(d.xml).disk_sources))

    def running_guests_with_lv(self, lv_path: str) -> tuple[str, ...]:
        """Running (or paused) guests that have ``VG/LV`` as a disk."""
        return tuple(d.name for d in self.domains if d.active and lv_path in self.disks_of[d.name])

    def guests_with_disk(self, lv_path: str) -> tuple[str, ...]:
        """Every defined guest (running or not) that names ``VG/LV`` as a disk."""
        return tuple(name for name, paths in self.disks_of.items() if lv_path in paths)

    def lv_in_use(self, lv: LV) -> str | None:
        """Why ``lv`` must be left alone now (a running guest's disk, or open), else None.

        LVM's open flag counts too (a mount, a kpartx mapping, a process); when LVM cannot
        tell (attribute ``X``) and activation is not known to be off, this refuses.
        """
        guest = self.running_disks.get(lv.path)
        if guest is not None:
            return f"it is the disk of the running guest {guest}"
        is_open = self.lvm.is_open(self.lvm.get(lv.name) or lv)  # these facts' own view of the LV
        if is_open is None:
            raise FactsUnavailable(
                f"LVM cannot tell whether {lv.path} is open (attributes {lv.attr!r}): kvmops refuses "
                "to act on it without knowing. Check `lvs -o lv_name,lv_attr` on the host"
            )
        return "it is open (mounted, mapped with kpartx, or held by a process)" if is_open else None

    @cached_property
    def macs_by_guest(self) -> dict[str, tuple[str, ...]]:
        """Guest name -> the MAC addresses of its NICs (live and persistent definition)."""
        return {d.name: tuple(dict.fromkeys((*macs_of(d.xml), *macs_of(d.inactive_xml or d.xml))))
                for d in self.domains}

    def macs_taken(self, but: str = "") -> frozenset[str]:
        """Every MAC a guest of this host has, except guest ``but``'s own."""
        return frozenset(m for g, ms in self.macs_by_guest.items() if g != but for m in ms)

    @cached_property
    def bridges_in_use(self) -> dict[str, str]:
        """Bridge -> why it is in use: named by a guest's domain XML, or a guest NIC is a port."""
        used: dict[str, str] = {}
        for d in self.domains:
            for bridge in read_domain(d.xml).bridges:
                used.setdefault(bridge, f"guest {d.name} ({d.state}) is attached to it")
        if self.net_facts is not None:
            for link in self.net_facts.links:
                if link.master and (link.kind == "tun" or link.name.startswith("vnet")):
                    used.setdefault(link.master, f"a guest NIC ({link.name}) is a port of it")
        return used


def with_lvs(facts: HostFacts, lvs: Iterable[LV]) -> HostFacts:
    """The facts as they will be once ``lvs`` exist (to preview a later phase of a procedure)."""
    names = {lv.name for lv in lvs}
    kept = tuple(lv for lv in facts.lvm.lvs if lv.name not in names)
    return replace(facts, lvm=replace(facts.lvm, lvs=(*kept, *lvs)))


def lv_free(facts: HostFacts, lv: LV, action: str) -> None:
    """No snapshot, merge, copy, mapping or removal of an LV that is in use (guide 4.2.5):
    the disk of a running guest, or open by anything (LVM's open flag), whoever the caller."""
    why = facts.lv_in_use(lv)
    if why:
        raise SafetyError(
            f"{action} refused: {lv.path} is in use: {why}. Shut the guest down first (kvmops guest "
            "shutdown NAME --apply), or unmount / `kpartx -d` it; nothing was changed"
        )


def lv_of_no_guest(facts: HostFacts, lv: LV, action: str) -> None:
    """An LV that a defined guest names as a disk stays while that guest is defined."""
    users = facts.guests_with_disk(lv.path)
    if users:
        raise SafetyError(
            f"{action} refused: {lv.path} is a disk of guest {', '.join(users)}; remove the guest "
            "first (runbook guest-remove) or change its definition; nothing was changed"
        )
