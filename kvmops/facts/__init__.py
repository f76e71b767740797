"""Facts first: one read of the host into an immutable value that every plan is made from.

:func:`read_facts` reads, once per decision: the LVM report of the site's VG (with each LV's
open flag), every libvirt domain with its state and both XML forms, the host's limits, and on
request the network facts, some files and some images. The value is a
:class:`~kvmops.hostfacts.HostFacts` (pure, :mod:`kvmops.hostfacts`).

A safety input that cannot be read is never replaced by a weaker one: when libvirt does not
answer, or LVM cannot tell whether an LV is open, reading or guarding refuses with
:class:`FactsUnavailable` and nothing is planned.

The facts come through the host's runner and its libvirt adapter (:class:`LiveSource`); a
recorded host (the demo site) is a runner that answers the same commands from its recording
(:class:`kvmops.runners.recorded.RecordedRunner`) and the libvirt test driver, so every
parser exists once and plan mode works there for any valid parameters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from kvmops.cmd import read
from kvmops.errors import LibvirtError
from kvmops.facts.files import read_text
from kvmops.facts.images import probe
from kvmops.facts.lvm import read_state
from kvmops.facts.net import read_net
from kvmops.guests.domain import DomainInfo, HostLimits
from kvmops.guests.history import PROC_STAT, log_path
from kvmops.guests.hostfile import exists_cmd
from kvmops.host import Host
from kvmops.hostfacts import FactsUnavailable, HostFacts, Wanted
from kvmops.images.probe import ImageInfo
from kvmops.lvm.state import LvmState
from kvmops.net.facts import NetFacts
from kvmops.site import Site

LOG_LINES = 400  # of each guest's libvirt log: a few dozen runs


class FactsSource(Protocol):
    """Where facts come from: the live host, or a recorded one."""

    def lvm(self, site: Site) -> LvmState: ...

    def domains(self) -> tuple[DomainInfo, ...]: ...

    def limits(self, domain_type: str) -> HostLimits: ...

    def net(self) -> NetFacts: ...

    def file(self, path: str) -> str | None: ...

    def exists(self, path: str) -> bool: ...

    def tail(self, path: str, lines: int) -> str | None: ...

    def image(self, path: str) -> ImageInfo: ...


def source_of(host: Host) -> FactsSource:
    """Where :func:`read_facts` reads this host's facts from: its runner and libvirt (a recorded
    site's runner answers the same commands from its recording)."""
    return LiveSource(host)


def read_facts(host: Host, wanted: Wanted | None = None, source: FactsSource | None = None) -> HostFacts:
    """One read of the host: LVM, domains, limits, and what ``wanted`` names (from ``source``,
    by default :func:`source_of` the host)."""
    wanted = wanted or Wanted()
    source = source or source_of(host)
    site = host.site
    if wanted.guest_logs:
        wanted = wanted | Wanted(files=(PROC_STAT,))
    try:
        domains = source.domains()
    except LibvirtError as exc:
        raise FactsUnavailable(
            f"libvirt on {site.name} does not answer ({exc}): kvmops cannot tell which guests run "
            "or which disks and bridges they use, so it plans nothing. Start libvirtd and retry"
        ) from exc
    return HostFacts(
        site=site,
        lvm=source.lvm(site),
        domains=domains,
        limits=source.limits(site.domain_type),
        read_at=datetime.now(UTC).isoformat(timespec="seconds"),
        net_facts=source.net() if wanted.net else None,
        files={p: source.file(p) for p in wanted.files},
        images={p: source.image(p) for p in wanted.images},
        paths={p: source.exists(p) for p in wanted.paths},
        guest_logs_read={d.name: source.tail(log_path(d.name), LOG_LINES) for d in domains}
        if wanted.guest_logs else None,
    )


class LiveSource:
    """Facts of the live host: commands through its runner, libvirt through its adapter."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def lvm(self, site: Site) -> LvmState:
        return read_state(self.host.runner, site.vg)

    def domains(self) -> tuple[DomainInfo, ...]:
        return self.host.virt.domains()

    def limits(self, domain_type: str) -> HostLimits:
        return self.host.virt.limits(domain_type)

    def net(self) -> NetFacts:
        return read_net(self.host.runner)

    def file(self, path: str) -> str | None:
        return read_text(self.host.runner, path)

    def exists(self, path: str) -> bool:
        return self.host.run(exists_cmd(path)).returncode == 0

    def tail(self, path: str, lines: int) -> str | None:
        res = self.host.run(read("tail", "-n", str(lines), "--", path, ok=(0, 1)))
        return res.stdout if res.returncode == 0 else None

    def image(self, path: str) -> ImageInfo:
        return probe(self.host.runner, path)
