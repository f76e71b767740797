"""Progress of long commands (an image copy, its verification): how it reads depends on where
it goes, decided in one place, :func:`printer`.

- **A terminal**: one line that updates in place (carriage return), ended when the command
  reaches 100 % or another line is said.
- **Anything else** (a notebook, papermill's log, the run journal, a pipe): a few lines, the
  first percentage past each quarter of a command (25 %, 50 %, 75 %, 100 %); dd's byte counts
  every 10th.

Progress lines are qemu-img's ``-p`` output (``(12.34/100%)``) and dd's ``status=progress``
lines (``536870912 bytes (537 MB, 512 MiB) copied, 1 s, 537 MB/s``); every other line passes
unchanged.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

from kvmops.plan import Progress

STEP = 25.0
DD_EVERY = 10
_PERCENT = re.compile(r"^\s*\((\d+(?:\.\d+)?)/100%\)\s*$")
_DD = re.compile(r"^\s*\d+ bytes\b.*\bcopied\b")


def percent(line: str) -> float | None:
    """The percentage of a qemu-img ``-p`` line, else None."""
    m = _PERCENT.match(line)
    return float(m.group(1)) if m else None


def is_dd(line: str) -> bool:
    """A dd ``status=progress`` line (bytes copied so far)."""
    return bool(_DD.match(line))


def thinned(say: Progress, every: float = STEP) -> Progress:
    """Pass a command's percentages only each ``every`` percent and dd's lines each 10th;
    other lines unchanged. A percentage below the last one, or another line, starts anew
    (the verification after a copy counts from 0 again)."""
    state = {"next": every, "last": -1.0, "dd": 0}

    def filtered(line: str) -> None:
        pct = percent(line)
        if pct is None:
            if is_dd(line):
                state["dd"] += 1
                if state["dd"] % DD_EVERY == 1:
                    say(line.strip())
                return
            state.update(next=every, last=-1.0, dd=0)
            say(line)
            return
        if pct < state["last"]:
            state["next"] = every
        state["last"] = pct
        if pct >= state["next"]:
            say(f"{int(pct)}%")
            state["next"] = (pct // every + 1) * every

    return filtered


class Updating:
    """One progress line, rewritten in place with a carriage return (a terminal)."""

    def __init__(self, out: TextIO, indent: str = "") -> None:
        self.out = out
        self.indent = indent
        self.open = False

    def __call__(self, line: str) -> None:
        pct = percent(line)
        if pct is None and not is_dd(line):
            self._end()
            self._write(f"{self.indent}{line}\n")
            return
        shown = f"{pct:.0f}%" if pct is not None else line.strip()
        self._write(f"\r{self.indent}{shown}\x1b[K")  # \x1b[K: clear the rest of a longer line
        self.open = True
        if pct is not None and pct >= 100:
            self._end()

    def _end(self) -> None:
        if self.open:
            self._write("\n")
            self.open = False

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


def printer(indent: str = "    ", out: TextIO | None = None) -> Progress:
    """Where progress lines go decides how they read: a terminal gets one updating line,
    anything else (a notebook, the journal, a pipe) a few lines per command."""
    stream = out or sys.stdout
    if _terminal(stream):
        return Updating(stream, indent)
    return thinned(lambda line: print(f"{indent}{line}", file=out or sys.stdout, flush=True))


def _terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream: not a terminal
        return False
