"""A lock per guest on the host, so two runs never work on the same guest at once.

The lock is a directory made atomically with ``mkdir`` on the host (so it works the same
locally and over SSH): ``/run/kvmops/lock/<guest>`` with an ``owner`` file saying who holds
it. A second run waits up to ``wait`` seconds, then refuses with a clear message.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from kvmops import names
from kvmops.cmd import Cmd, transient
from kvmops.errors import KvmopsError
from kvmops.runners.base import Runner

LOCK_DIR = "/run/kvmops/lock"
LOCK_DIR_ENV = "KVMOPS_LOCK_DIR"


def lock_dir() -> str:
    """Where the locks live: ``$KVMOPS_LOCK_DIR`` (tests) or ``/run/kvmops/lock``.

    The path is used on the host the runner reaches (locally, or over SSH).
    """
    return os.environ.get(LOCK_DIR_ENV) or LOCK_DIR


class GuestLocked(KvmopsError):
    """Another run holds the guest's lock."""


def _cmd(*argv: str, stdin: str | None = None, ok: tuple[int, ...] = (0,)) -> Cmd:
    # Lock bookkeeping is undone on every path out, not a change to the host's managed state.
    return transient(*argv, stdin=stdin, ok=ok)


def owner_line(what: str) -> str:
    """``who@machine pid=N since=UTC-time what``: written into the lock's owner file."""
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{getpass.getuser()}@{socket.gethostname()} pid={os.getpid()} since={since} {what}\n"


def try_lock(runner: Runner, guest: str, what: str, base: str | None = None) -> bool:
    """``mkdir -p BASE`` then ``mkdir BASE/GUEST``: True when this run now holds the lock."""
    base = base or lock_dir()
    path = f"{base}/{names.guest_name(guest)}"
    runner.run(_cmd("mkdir", "-p", "-m", "0700", base))
    if runner.run(_cmd("mkdir", "-m", "0700", path, ok=(0, 1)), check=True).returncode != 0:
        return False
    try:
        runner.run(_cmd("tee", f"{path}/owner", stdin=owner_line(what)))
    except BaseException:
        unlock(runner, guest, base)  # the lock is ours but unusable: never leave it behind
        raise
    return True


def holder(runner: Runner, guest: str, base: str | None = None) -> str:
    """Who holds the lock (the owner line), or a note that the owner is not written yet."""
    base = base or lock_dir()
    res = runner.run(_cmd("cat", f"{base}/{guest}/owner", ok=(0, 1)))
    return res.stdout.strip() or "(owner not recorded yet)"


def unlock(runner: Runner, guest: str, base: str | None = None) -> None:
    """``rm -f BASE/GUEST/owner`` and ``rmdir BASE/GUEST``."""
    base = base or lock_dir()
    path = f"{base}/{names.guest_name(guest)}"
    runner.run(_cmd("rm", "-f", f"{path}/owner"))
    runner.run(_cmd("rmdir", path, ok=(0, 1)))


@contextmanager
def guest_lock(runner: Runner, guest: str, what: str, *, wait: float = 0.0,
               base: str | None = None, poll: float = 1.0) -> Iterator[None]:
    """Hold the guest's lock for the block; released on every path out (``base``: see
    :func:`lock_dir`)."""
    base = base or lock_dir()
    deadline = time.monotonic() + wait
    while not try_lock(runner, guest, what, base):
        if time.monotonic() >= deadline:
            raise GuestLocked(
                f"guest {guest} is locked by another run: {holder(runner, guest, base)}. "
                f"Wait for it to finish; if that run is dead, remove the lock: "
                f"`rm {base}/{guest}/owner && rmdir {base}/{guest}` on {runner.host}"
            )
        time.sleep(poll)
    try:
        yield
    finally:
        unlock(runner, guest, base)
