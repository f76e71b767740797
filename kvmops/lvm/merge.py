"""Following a snapshot merge until it has really finished (guide 4.2.5: lvconvert goes on
for some time even after it has reported "Merged: 100.00%")."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from kvmops.errors import KvmopsError
from kvmops.lvm.facts import lvs_cmd, parse_lvs
from kvmops.runners.base import Runner

_PROGRESS = re.compile(r"^\s*(\S+/\S+): Merged: (\d+(?:\.\d+)?)%\s*$")
_DELAYED = re.compile(r"Delaying merge since origin is open")


@dataclass(frozen=True)
class MergeLine:
    """One line of ``lvconvert --mergesnapshot --interval N`` output."""

    origin: str | None
    percent: float | None
    delayed: bool = False


def parse_merge_line(line: str) -> MergeLine | None:
    """``  rl_build/vmbig: Merged: 20.73%`` -> MergeLine('rl_build/vmbig', 20.73)."""
    m = _PROGRESS.match(line)
    if m:
        return MergeLine(m.group(1), float(m.group(2)))
    if _DELAYED.search(line):
        return MergeLine(None, None, delayed=True)
    return None


class MergeNotFinished(KvmopsError):
    """The merge did not finish in time, or was delayed because the origin is open."""


def wait_for_merge(runner: Runner, vg: str, snap: str, origin: str,
                   progress: Callable[[str], None], *, timeout: float = 3600,
                   poll: float = 2.0) -> None:
    """Poll ``lvs VG`` until the snapshot is gone and the origin no longer merges."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        lvs = {lv.name: lv for lv in parse_lvs(runner.run(lvs_cmd(vg)).stdout)}
        snap_lv, origin_lv = lvs.get(snap), lvs.get(origin)
        if snap_lv is None and (origin_lv is None or not origin_lv.merging):
            progress(f"merge finished: {vg}/{snap} is gone, {vg}/{origin} holds the snapshot's state")
            return
        if origin_lv is not None and origin_lv.open and snap_lv is not None:
            raise MergeNotFinished(
                f"the merge of {vg}/{snap} is delayed because {vg}/{origin} is open: stop the guest "
                f"or unmount it; it completes on the next activation (lvchange -an then -ay {vg}/{origin})"
            )
        note = f"merging {vg}/{snap}: {snap_lv.data_percent if snap_lv else '?'}% of changes left"
        if note != last:
            progress(note)
            last = note
        if time.monotonic() > deadline:
            raise MergeNotFinished(
                f"the merge of {vg}/{snap} still runs after {timeout:.0f}s; it continues in the kernel. "
                f"Check with `lvs -a {vg}` and do not start the guest before it is done"
            )
        time.sleep(poll)
