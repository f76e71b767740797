"""The data path of a transfer: a process on the source host writes the data to its stdout,
kvmops reads it, computes its sha256 and writes it into the stdin of a process on the target
host. Both processes are opened through their hosts' runners (:meth:`Runner.stream_argv`: the
same SSH options, strict host keys and quoting as every other command), argv only, no shell.

Every path out ends both processes: a failure, a stall (no data for ``idle`` seconds) or an
interrupt kills them, and the error names the host, the command, its exit code and stderr.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from kvmops.cmd import Cmd
from kvmops.errors import CommandFailed, KvmopsError
from kvmops.runners.base import Runner
from kvmops.runners.local import command_env
from kvmops.transfer.meter import Meter

CHUNK = 4 << 20  # bytes asked of the source pipe at once
PIPE_SIZE = 1 << 20  # the pipes' kernel buffers (F_SETPIPE_SZ), fewer system calls
IDLE = 300.0  # seconds without progress before a transfer is given up as stalled
_F_SETPIPE_SZ = 1031
_STDERR_KEEP = 16384

Say = Callable[[str], None]


class TransferFailed(KvmopsError):
    """A transfer did not deliver what it had to (too few bytes, a stall, a checksum mismatch)."""


@dataclass(frozen=True)
class Streamed:
    """What went through kvmops: bytes, their sha256, how long it took."""

    bytes: int
    sha256: str
    seconds: float


class _Proc:
    """One end of the stream: the process, its host and command, its stderr (kept in a thread)."""

    def __init__(self, runner: Runner, cmd: Cmd, *, reads: bool) -> None:
        self.host = runner.host
        self.cmd = cmd
        fed = reads and cmd.stdin is not None  # a source that reads a text (a signer: the text in, its signature out)
        try:
            self.proc = subprocess.Popen(
                runner.stream_argv(cmd), env=command_env(cmd), stderr=subprocess.PIPE,
                stdin=subprocess.PIPE if fed or not reads else subprocess.DEVNULL,
                stdout=subprocess.PIPE if reads else subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            raise CommandFailed(self.host, cmd.masked_argv(), 127, f"not installed ({exc})") from None
        self.err = b""
        self._t = threading.Thread(target=self._drain, daemon=True)
        self._t.start()
        if fed:
            threading.Thread(target=self._feed, args=((cmd.stdin or "").encode(),), daemon=True).start()

    def _feed(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):  # a source that stops reading fails on its own: its exit code tells
            self.proc.stdin.write(data)
            self.proc.stdin.close()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read(4096), b""):  # type: ignore[union-attr]
            self.err = (self.err + chunk)[-_STDERR_KEEP:]

    def wait(self, timeout: float | None = None) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._t.join(timeout=5)
        return rc

    def failed(self, rc: int) -> CommandFailed:
        return CommandFailed(self.host, self.cmd.masked_argv(), rc, self.err.decode("utf-8", "replace"))

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def stream(source: Runner, src: Cmd, target: Runner, dst: Cmd, *, size: int | None = None,
           what: str = "copy", progress: Say | None = None, idle: float = IDLE) -> Streamed:
    """Stream ``src``'s stdout (on ``source``) into ``dst``'s stdin (on ``target``).

    Raises :class:`CommandFailed` when either command fails (the target's failure first: it
    explains a source stopped by a broken pipe), :class:`TransferFailed` on a stall or when
    ``size`` is given and a different number of bytes arrived.
    """
    say = progress or (lambda _line: None)
    meter = Meter(what, size, say)
    reader = _Proc(source, src, reads=True)
    try:
        writer = _Proc(target, dst, reads=False)
    except BaseException:
        reader.kill()
        raise
    t0 = time.monotonic()
    try:
        digest = _pump(reader, writer, meter, idle)
        return _finish(reader, writer, meter, digest, size, time.monotonic() - t0)
    finally:
        for proc in (reader, writer):
            if proc.proc.poll() is None:
                proc.kill()


def _finish(reader: _Proc, writer: _Proc, meter: Meter, digest: str, size: int | None,
            seconds: float) -> Streamed:
    rc_src = reader.wait()
    if rc_src != 0:
        writer.kill()
        raise reader.failed(rc_src)
    rc_dst = writer.wait()
    if rc_dst != 0:
        raise writer.failed(rc_dst)
    if size is not None and meter.done != size:
        raise TransferFailed(f"{meter.what}: {meter.done} bytes arrived, {size} expected: the source "
                             f"`{reader.cmd.display()}` on {reader.host} ended early or read past the end")
    meter.finish()
    return Streamed(meter.done, digest, seconds)


def _pipe_size(stream: IO[bytes] | None) -> int:
    assert stream is not None
    fd = stream.fileno()
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
    os.set_blocking(fd, False)
    return fd


def _pump(reader: _Proc, writer: _Proc, meter: Meter, idle: float) -> str:
    """Copy until the source's end of file; the sha256 of everything copied."""
    fd_in, fd_out = _pipe_size(reader.proc.stdout), _pipe_size(writer.proc.stdin)
    sha = hashlib.sha256()
    while True:
        _ready(fd_in, idle, reader, "sends nothing")
        try:
            chunk = os.read(fd_in, CHUNK)
        except BlockingIOError:
            continue
        if not chunk:
            break
        sha.update(chunk)
        _write(fd_out, memoryview(chunk), writer, idle)
        meter.add(len(chunk))
    assert writer.proc.stdin is not None
    writer.proc.stdin.close()
    return sha.hexdigest()


def _write(fd: int, data: memoryview, writer: _Proc, idle: float) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            _ready(fd, idle, writer, "takes nothing", write=True)
            continue
        except BrokenPipeError:
            rc = writer.wait(timeout=30)
            if rc == 0:
                raise TransferFailed(f"`{writer.cmd.display()}` on {writer.host} ended before the data did") from None
            raise writer.failed(rc) from None
        data = data[n:]


def _ready(fd: int, idle: float, proc: _Proc, stalled: str, *, write: bool = False) -> None:
    ready = select.select([], [fd], [], idle)[1] if write else select.select([fd], [], [], idle)[0]
    if not ready:
        raise TransferFailed(f"`{proc.cmd.display()}` on {proc.host} {stalled} for {idle:g} s: the transfer "
                             "is given up as stalled (network or disk hanging?); both ends were stopped")
