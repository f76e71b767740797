"""The run's locks on the host, so two runs never change the same guest (or bridge) at once.

A lock is a ``flock`` on ``/run/kvmops/lock/<kind>-<name>.lock`` held by a process on the host
for exactly as long as the run holds it: ``flock --nonblock FILE cat``, whose stdin is this
run's pipe (locally, or through the SSH runner). When the run ends, or dies, the pipe closes,
``cat`` ends and the kernel releases the lock: a dead run's lock is no lock. Beside it,
``<kind>-<name>.owner`` says who holds it (``who@machine pid=N since=... what``), for the
message another run gets. A second run waits up to ``wait`` seconds, then refuses.

The executor takes the locks of every guest a plan changes (:func:`lock_keys`), the CLI's
plans too; :func:`guest_lock` holds one for a block (a runbook reading a disk that another
run may be writing).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import select
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol

from kvmops import names
from kvmops.cmd import Cmd, transient
from kvmops.errors import KvmopsError
from kvmops.runners.base import Runner
from kvmops.runners.plan import PlanRunner
from kvmops.site import Site

LOCK_DIR = "/run/kvmops/lock"
LOCK_DIR_ENV = "KVMOPS_LOCK_DIR"
BUSY = 75  # flock's exit code when the lock is taken (--conflict-exit-code)
ACK = b"kvmops-lock\n"
ACK_SECONDS = 30.0
_SNAPSHOT = re.compile(r"-\d{8}T\d{4}Z$")


def lock_dir() -> str:
    """Where the locks live: ``$KVMOPS_LOCK_DIR`` (tests) or ``/run/kvmops/lock``.

    The path is used on the host the runner reaches (locally, or over SSH).
    """
    return os.environ.get(LOCK_DIR_ENV) or LOCK_DIR


class GuestLocked(KvmopsError):
    """Another live run holds the lock."""


class _Effect(Protocol):
    @property
    def action(self) -> str: ...

    @property
    def obj(self) -> str: ...


def lock_keys(site: Site, effects: Iterable[_Effect]) -> list[str]:
    """The locks a run takes for ``effects``: ``guest-NAME`` for every guest it changes (its
    definition, its disks and snapshots, its kept XML and seed), ``bridge-NAME`` for bridges,
    ``image-FILE`` for an image file a procedure holds (action ``hold``)."""
    keys: set[str] = set()
    for e in effects:
        guest = _guest_of(site, e.action, e.obj)
        if guest:
            keys.add(f"guest-{guest}")
        elif e.action in ("delete-bridge", "add", "up-new", "reapply") and names_ok(e.obj):
            keys.add(f"bridge-{e.obj}")
        elif e.action == "hold" and e.obj.startswith("/") and names_ok(os.path.basename(e.obj)):
            keys.add(f"image-{os.path.basename(e.obj)}")
    return sorted(keys)


def names_ok(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", text))


def _guest_of(site: Site, action: str, obj: str) -> str | None:
    if action in ("define", "undefine", "destroy", "start", "shutdown", "autostart", "eject", "blockresize"):
        return obj if names_ok(obj) else None
    path = obj.split("/", 1)[1] if obj.startswith(site.vg + "/") else ""
    if path and site.is_guest_lv(path):
        guest = _SNAPSHOT.sub("", path)[len(site.lv_prefix):]
        return guest if names_ok(guest) else None
    base = os.path.basename(obj)
    for folder, suffix in ((site.xml_dir, ".xml"), (site.seed_dir, "-seed.iso")):
        if os.path.dirname(obj) == folder.rstrip("/") and base.endswith(suffix) and names_ok(base[: -len(suffix)]):
            return base[: -len(suffix)]
    return None


def owner_line(what: str) -> str:
    """``who@machine pid=N since=UTC-time what``: written beside the lock."""
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{getpass.getuser()}@{socket.gethostname()} pid={os.getpid()} since={since} {what}\n"


class _Flock:
    """One held lock: the ``flock ... cat`` process on the host and its pipe."""

    def __init__(self, runner: Runner, path: str) -> None:
        inner = runner.inner if isinstance(runner, PlanRunner) and runner.inner else runner
        cmd = Cmd(("flock", "--nonblock", "--conflict-exit-code", str(BUSY), path, "cat"))
        self.proc = subprocess.Popen(inner.stream_argv(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.error = ""

    def acquired(self) -> bool:
        """True once ``cat`` echoes the line: flock holds the lock; False when it was taken."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(ACK)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        ready, _, _ = select.select([self.proc.stdout], [], [], ACK_SECONDS)
        line = self.proc.stdout.readline() if ready else b""
        if line == ACK:
            return True
        self.release()
        if self.proc.returncode == BUSY:
            return False
        err = self.error
        raise KvmopsError(f"could not take a lock with flock (exit {self.proc.returncode}): {err or 'no answer'}")

    def release(self) -> None:
        """Close the pipe: ``cat`` ends and the kernel releases the lock."""
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # the process ended already (the lock was taken)
                    stream.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None and not self.proc.stderr.closed:
            self.error = self.proc.stderr.read().decode(errors="replace").strip()
            self.proc.stderr.close()


_OURS: dict[tuple[str, str], tuple[int, _Flock]] = {}  # (host, lock file) -> holders in this process, the flock
_OURS_LOCK = threading.Lock()


class RunLocks:
    """The locks one run holds on a host, taken as its plans need them, released together.

    A lock this process holds already (a runbook cell's :func:`guest_lock` around a plan whose
    executor takes the same lock) is the same run's: it is counted, not taken twice, and
    released when its last holder lets go.
    """

    def __init__(self, runner: Runner, what: str, base: str | None = None) -> None:
        self.runner, self.what, self.base = runner, what, base or lock_dir()
        self.held: set[str] = set()

    def _ours(self, key: str) -> tuple[str, str]:
        return (self.runner.host, f"{self.base}/{key}.lock")

    def take(self, keys: Iterable[str], wait: float = 0.0, poll: float = 1.0) -> None:
        for key in keys:
            if key in self.held:
                continue
            with _OURS_LOCK:
                count, lock = _OURS.get(self._ours(key), (0, None))
                if lock is not None:
                    _OURS[self._ours(key)] = (count + 1, lock)
                    self.held.add(key)
                    continue
            flock = self._one(key, wait, poll)
            with _OURS_LOCK:
                _OURS[self._ours(key)] = (1, flock)
            self.held.add(key)

    def _one(self, key: str, wait: float, poll: float) -> _Flock:
        if not names_ok(key):
            raise KvmopsError(f"bad lock name {key!r}")
        self.runner.run(transient("mkdir", "-p", "-m", "0700", self.base))
        deadline = time.monotonic() + wait
        path = f"{self.base}/{key}.lock"
        while True:
            started = datetime.now(UTC).isoformat(timespec="seconds")
            lock = _Flock(self.runner, path)
            got = lock.acquired()
            self.runner.record(started, f"flock --nonblock {path} cat  # held while this run lives", False,
                               0 if got else BUSY, 0.0)
            if got:
                try:
                    self.runner.run(transient("tee", f"{self.base}/{key}.owner", stdin=owner_line(self.what)))
                except BaseException:
                    lock.release()  # no lock without its owner line, not even until this process ends
                    raise
                return lock
            if time.monotonic() >= deadline:
                raise GuestLocked(
                    f"{key.replace('-', ' ', 1)} is locked by another run that is alive: {self.holder(key)}. "
                    f"Wait for it to finish (a lock ends with its run, also when that run dies; if it hangs, "
                    f"stop that process on {self.runner.host})"
                )
            time.sleep(poll)

    def holder(self, key: str) -> str:
        res = self.runner.run(transient("cat", f"{self.base}/{key}.owner", ok=(0, 1)))
        return res.stdout.strip() or "(owner not recorded yet)"

    def release(self) -> None:
        for key in sorted(self.held):
            with _OURS_LOCK:
                count, lock = _OURS[self._ours(key)]
                if count > 1:
                    _OURS[self._ours(key)] = (count - 1, lock)
                else:
                    del _OURS[self._ours(key)]
            self.held.discard(key)
            if count > 1:
                continue
            try:
                self.runner.run(transient("rm", "-f", f"{self.base}/{key}.owner"), check=False)
            finally:
                lock.release()


@contextmanager
def guest_lock(runner: Runner, guest: str, what: str, *, wait: float = 0.0,
               base: str | None = None, poll: float = 1.0) -> Iterator[None]:
    """Hold the guest's lock for the block; released on every path out (``base``: see
    :func:`lock_dir`)."""
    names.guest_name(guest)
    locks = RunLocks(runner, what, base)
    try:
        locks.take([f"guest-{guest}"], wait, poll)
        yield
    finally:
        locks.release()
