"""What libvirt's per-guest log says about a guest's runs (pure parsers).

libvirt appends to ``/var/log/libvirt/qemu/<guest>.log`` a line when it starts the guest
(``2026-11-30 08:12:49.815+0000: starting up libvirt version: 9.0.0, ...``) and one when the
guest stops (``... shutting down, reason=destroyed``). A host that lost its power writes
nothing more: a run that started before the host's last boot and never stopped was running
when the host went down. That is libvirt's own record, kept on the host's disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

LOG_DIR = "/var/log/libvirt/qemu"
PROC_STAT = "/proc/stat"
_START = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+\d{4}): starting up libvirt version")
_STOP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+\d{4}): shutting down, reason=(\S+)")
_BTIME = re.compile(r"^btime (\d+)$", re.MULTILINE)


def log_path(guest: str) -> str:
    return f"{LOG_DIR}/{guest}.log"


@dataclass(frozen=True)
class Run:
    """One run of a guest: when libvirt started it, and when and why it stopped (None: no stop
    was ever written)."""

    start: datetime
    stop: datetime | None = None
    reason: str = ""


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f%z")


def parse_qemu_log(text: str) -> tuple[Run, ...]:
    """The runs of a libvirt qemu log, oldest first (other lines are QEMU's own)."""
    runs: list[Run] = []
    for line in text.splitlines():
        if m := _START.match(line):
            runs.append(Run(_time(m.group(1))))
        elif (m := _STOP.match(line)) and runs and runs[-1].stop is None:
            runs[-1] = Run(runs[-1].start, _time(m.group(1)), m.group(2))
    return tuple(runs)


def parse_boot_time(proc_stat: str) -> datetime:
    """The host's last boot from ``/proc/stat`` (``btime`` seconds since the epoch)."""
    m = _BTIME.search(proc_stat)
    if m is None:
        raise ValueError("no btime line in /proc/stat")
    return datetime.fromtimestamp(int(m.group(1)), UTC)


def running_when_host_went_down(runs: tuple[Run, ...], boot: datetime) -> bool:
    """The last run that started before the host's boot never stopped: the guest was running
    when the host went down (a clean host shutdown writes the stop of every guest)."""
    before = [r for r in runs if r.start < boot]
    return bool(before) and before[-1].stop is None
