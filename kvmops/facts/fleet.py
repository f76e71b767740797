"""A fleet's hosts (site files and inventories, read as data) and reading every host of it at
once: bounded concurrency, a time limit per host, and a host that does not answer reported,
never fatal for the others. Each live host is read over one SSH connection with one command
(:class:`OneRead`)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence

from kvmops.errors import KvmopsError
from kvmops.facts import LiveSource, read_facts
from kvmops.facts.inventory import read_inventory
from kvmops.facts.lvm import read_state_at_once
from kvmops.fleet.hosts import DEFAULT_GROUP, FleetHost, fleet_of
from kvmops.fleet.reading import HostReading
from kvmops.guests.domain import DomainInfo
from kvmops.host import Host, connect
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.lvm.state import LvmState
from kvmops.site import Site

Progress = Callable[[str], None]


def load_fleet(sources: Sequence[str], group: str = DEFAULT_GROUP, *, plugins: bool = False) -> tuple[FleetHost, ...]:
    """Every host of the sources (site files, Ansible inventories: see
    :func:`kvmops.fleet.hosts.fleet_of`); ``plugins``: let Ansible run its configured inventory
    plugins and scripts (:func:`kvmops.facts.inventory.read_inventory`)."""
    return fleet_of(sources, group, lambda path: read_inventory(path, plugins=plugins))


class OneRead(LiveSource):
    """A fleet host's facts over one SSH connection with one command: the LVM reports in one
    ``lvm fullreport`` (parsed by the same parsers as ``vgs`` and ``lvs``), read first, so that
    its command brings the connection up and libvirt's socket, forwarded through that same
    connection, needs no command of its own."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self._lvm: LvmState | None = None

    def lvm(self, site: Site) -> LvmState:
        if self._lvm is None:
            self._lvm = read_state_at_once(self.host.runner, site.vg)
        return self._lvm

    def domains(self) -> tuple[DomainInfo, ...]:
        self.lvm(self.host.site)
        return super().domains()


def read_one(host: FleetHost, wanted: Wanted) -> HostFacts:
    """The facts of one host (plan-only connection: nothing is changed); a live host's in one
    command (:class:`OneRead`), a recorded one's as every reader reads it."""
    conn = connect(host.site)
    try:
        return read_facts(conn, wanted, source=None if host.site.recorded else OneRead(conn))
    finally:
        conn.close()


def read_fleet(hosts: Sequence[FleetHost], *, wanted: Wanted | None = None, concurrency: int = 8,
               timeout: float = 60.0, progress: Progress | None = None,
               reader: Callable[[FleetHost, Wanted], HostFacts] = read_one) -> tuple[HostReading, ...]:
    """Every host's facts, read ``concurrency`` at a time; a host that takes longer than
    ``timeout`` seconds is reported as not answering (its reader is left behind in a daemon
    thread, so it cannot hold the command up)."""
    if concurrency < 1 or timeout <= 0:
        raise KvmopsError(f"concurrency must be 1 or more and timeout positive (got {concurrency}, {timeout})")
    say = progress or (lambda _line: None)
    wanted = wanted or Wanted()
    results: queue.Queue[HostReading] = queue.Queue()
    started: dict[str, float] = {}
    out: dict[str, HostReading] = {}
    todo = list(hosts)
    while todo or len(started) > len(out):
        while todo and len(started) - len(out) < concurrency:
            host = todo.pop(0)
            started[host.name] = time.monotonic()
            threading.Thread(target=_read, args=(host, wanted, reader, results), daemon=True,
                             name=f"fleet-{host.name}").start()
        _collect(results, out, started, say)
        _expire(hosts, out, started, timeout, say)
    return tuple(out[h.name] for h in hosts)


def _read(host: FleetHost, wanted: Wanted, reader: Callable[[FleetHost, Wanted], HostFacts],
          results: queue.Queue[HostReading]) -> None:
    t0 = time.monotonic()
    try:
        results.put(HostReading(host, reader(host, wanted), "", time.monotonic() - t0))
    except KvmopsError as exc:
        results.put(HostReading(host, None, str(exc), time.monotonic() - t0))
    except Exception as exc:  # one host's unexpected failure must not hide the others
        results.put(HostReading(host, None, f"{type(exc).__name__}: {exc}", time.monotonic() - t0))


def _collect(results: queue.Queue[HostReading], out: dict[str, HostReading], started: dict[str, float],
             say: Progress) -> None:
    try:
        got = results.get(timeout=0.2)
    except queue.Empty:
        return
    if got.host.name in out:  # it answered after its time was up: the verdict stands
        return
    out[got.host.name] = got
    say(f"{got.host.name}: {'read' if got.facts else 'FAILED'} in {got.seconds:.1f} s"
        + (f" ({got.error})" if got.error else ""))


def _expire(hosts: Sequence[FleetHost], out: dict[str, HostReading], started: dict[str, float],
            timeout: float, say: Progress) -> None:
    now = time.monotonic()
    for host in hosts:
        t0 = started.get(host.name)
        if t0 is not None and host.name not in out and now - t0 > timeout:
            out[host.name] = HostReading(host, None, f"did not answer within {timeout:g} s", now - t0)
            say(f"{host.name}: did not answer within {timeout:g} s")
