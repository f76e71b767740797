"""Progress for long steps: phases with elapsed time, and a throttled view of chatty output."""

from __future__ import annotations

import time
from collections.abc import Callable

Say = Callable[[str], None]


def say_stdout(line: str) -> None:
    print(line, flush=True)


class Phases:
    """``[  12s] build: debootstrap`` lines, timed from construction."""

    def __init__(self, say: Say | None = None) -> None:
        self.say = say or say_stdout
        self.t0 = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def __call__(self, text: str) -> None:
        self.say(f"[{self.elapsed:5.0f}s] {text}")

    def lines(self, prefix: str, every: float = 5.0) -> Say:
        """A sink that shows at most one line of a command's output per ``every`` seconds."""
        last = [0.0]

        def sink(line: str) -> None:
            now = time.monotonic()
            if now - last[0] >= every:
                last[0] = now
                self(f"{prefix}: {line.strip()[:100]}")

        return sink
