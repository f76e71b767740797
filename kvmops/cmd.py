"""The command model: an argv tuple that knows whether it mutates and which parts are secret.

Commands are never shell strings. ``shlex.join`` is used only by :meth:`Cmd.display` and by
the SSH runner for the remote side.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from enum import Enum

MASK = "REDACTED"

# Lines that are noise, not results: the polkit complaint of the guide's sec. 4.1 and LVM's
# leaked-descriptor warnings when it runs under a pipe.
_NOISE = (
    re.compile(r"^Error registering authentication agent: .*$"),
    re.compile(r"^\s*File descriptor \d+ \(.*\) leaked on \S+ invocation\..*$"),
)


def strip_noise(text: str) -> str:
    """Remove known harmless noise lines (polkit agent, LVM fd leaks) from command output."""
    kept = [ln for ln in text.splitlines(keepends=True) if not _is_noise(ln.rstrip("\n"))]
    return "".join(kept)


def _is_noise(line: str) -> bool:
    return any(p.match(line) for p in _NOISE)


class Kind(Enum):
    """What a command (or a libvirt call) does to the host.

    ``READ`` only reads facts; ``TRANSIENT`` makes something that is undone on every path out
    (a read-only kpartx mapping, a mount, a lock, a mount point): plan mode may run both.
    ``CHANGE`` changes the host: it runs only when a plan is applied.
    """

    READ = "read"
    TRANSIENT = "transient"
    CHANGE = "change"


@dataclass(frozen=True)
class Cmd:
    """One command: ``Cmd(("lvs", "--reportformat", "json"))``.

    ``kind``: read, transient or change (the plan runner never executes a change).
    ``secret``: indexes into ``argv`` that are masked in every display.
    ``stdin``: text fed to the command; ``stdin_secret`` masks it in displays.
    ``ok``: exit codes that are not failures.
    """

    argv: tuple[str, ...]
    kind: Kind = Kind.READ
    secret: frozenset[int] = frozenset()
    stdin: str | None = None
    stdin_secret: bool = False
    ok: tuple[int, ...] = (0,)
    timeout: float | None = None
    env: tuple[tuple[str, str], ...] = field(default=(("LVM_SUPPRESS_FD_WARNINGS", "1"),))

    def __post_init__(self) -> None:
        if not isinstance(self.argv, tuple) or not self.argv or not all(isinstance(a, str) for a in self.argv):
            raise TypeError(f"a command is a non-empty tuple of strings, got {self.argv!r}")
        if any("\0" in a for a in self.argv):
            raise ValueError("a command argument cannot contain a NUL byte")

    @property
    def mutates(self) -> bool:
        """It changes the host: only an applied plan runs it."""
        return self.kind is Kind.CHANGE

    def masked_argv(self) -> tuple[str, ...]:
        """The argv with secret arguments replaced by a mask."""
        return tuple(MASK if i in self.secret else a for i, a in enumerate(self.argv))

    def display(self) -> str:
        """The command as an admin would type it, secrets masked: ``lvs --units b``."""
        text = shlex.join(self.masked_argv())
        if self.stdin is not None:
            text += f" <<< {MASK if self.stdin_secret else _short(self.stdin)}"
        return text


def _short(text: str) -> str:
    one = text.replace("\n", "\\n")
    return shlex.quote(one if len(one) <= 60 else one[:57] + "...")


def read(*argv: str, ok: tuple[int, ...] = (0,), timeout: float | None = None) -> Cmd:
    """A command that only reads facts; safe in plan mode."""
    return Cmd(tuple(argv), Kind.READ, ok=ok, timeout=timeout)


def transient(*argv: str, stdin: str | None = None, ok: tuple[int, ...] = (0,),
              timeout: float | None = None) -> Cmd:
    """A command whose effect is undone on every path out (a read-only mapping, a mount)."""
    return Cmd(tuple(argv), Kind.TRANSIENT, stdin=stdin, ok=ok, timeout=timeout)


def change(
    *argv: str,
    secret: frozenset[int] = frozenset(),
    stdin: str | None = None,
    stdin_secret: bool = False,
    ok: tuple[int, ...] = (0,),
    timeout: float | None = None,
) -> Cmd:
    """A command that changes the host; runs only when a plan is applied."""
    return Cmd(
        tuple(argv),
        Kind.CHANGE,
        secret=secret,
        stdin=stdin,
        stdin_secret=stdin_secret,
        ok=ok,
        timeout=timeout,
    )


@dataclass(frozen=True)
class Result:
    """What a command did: exit code, output (noise removed), duration, and whether it ran."""

    cmd: Cmd
    host: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    executed: bool = True

    @property
    def ok(self) -> bool:
        return self.returncode in self.cmd.ok
