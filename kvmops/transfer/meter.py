"""Progress of a long copy in a few lines: one every 10 % (or every 30 s when the size is
unknown or the copy is slow), readable in a terminal, a notebook and a run's record."""

from __future__ import annotations

import time
from collections.abc import Callable

from kvmops.units import human

Say = Callable[[str], None]


class Meter:
    """Counts bytes and says how far a copy is: ``vda: 3.00 GiB of 10.00 GiB (30%), 210 MiB/s,
    about 34 s left``."""

    def __init__(self, what: str, total: int | None, say: Say, *, every: float = 30.0, step: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.total = total
        self.say = say
        self.every = every
        self.step = step
        self.clock = clock
        self.done = 0
        self.started = clock()
        self.last = self.started
        self.next_pct = step

    def add(self, n: int) -> None:
        self.done += n
        now = self.clock()
        pct = self.percent
        if (pct is not None and pct >= self.next_pct) or now - self.last >= self.every:
            self.say(self.line(now))
            self.last = now
            if pct is not None:
                self.next_pct = (int(pct) // self.step + 1) * self.step

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return 100.0 * self.done / self.total

    def rate(self, now: float) -> float:
        return self.done / max(now - self.started, 1e-6)

    def line(self, now: float) -> str:
        rate = self.rate(now)
        text = f"{self.what}: {human(self.done)}"
        if self.total:
            text += f" of {human(self.total)} ({self.percent:.0f}%)"
        text += f", {human(int(rate))}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", about {(self.total - self.done) / rate:.0f} s left"
        return text

    def finish(self) -> str:
        """The last line: how much, how long, how fast."""
        now = self.clock()
        line = (f"{self.what}: {human(self.done)} in {now - self.started:.1f} s "
                f"({human(int(self.rate(now)))}/s)")
        self.say(line)
        return line
