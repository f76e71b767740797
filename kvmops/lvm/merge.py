"""The progress lines of a snapshot merge (``lvconvert --mergesnapshot --interval N``), parsed.

Waiting until the merge has really finished is :func:`kvmops.waits.merge_done`."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
