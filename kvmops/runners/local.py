"""Run commands on this machine: subprocess without a shell."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from typing import IO

from kvmops.cmd import Cmd, Result
from kvmops.errors import CommandFailed, CommandTimeout
from kvmops.runners.base import LineSink, Runner

_SPLIT = re.compile(r"[\r\n]")


class LocalRunner(Runner):
    """Executes argv tuples locally with ``shell=False``."""

    def __init__(self, host: str = "localhost") -> None:
        super().__init__()
        self.host = host

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        return popen_result(self.host, cmd, list(cmd.argv), on_line)

    def stream_argv(self, cmd: Cmd) -> list[str]:
        return list(cmd.argv)


def command_env(cmd: Cmd) -> dict[str, str]:
    """The environment a command runs with (the runner's, the command's own, ``LC_ALL=C``)."""
    return {**os.environ, **dict(cmd.env), "LC_ALL": "C"}


def popen_result(host: str, cmd: Cmd, argv: list[str], on_line: LineSink | None) -> Result:
    """Run ``argv`` (already adapted by the runner), feed stdin, collect or stream output."""
    env = command_env(cmd)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if cmd.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise CommandFailed(host, cmd.masked_argv(), 127, f"{argv[0]}: not installed ({exc})") from None
    with proc:  # closes the pipes on every way out
        return _collect(proc, host, cmd, on_line)


def _collect(proc: subprocess.Popen[str], host: str, cmd: Cmd, on_line: LineSink | None) -> Result:
    out: list[str] = []
    err: list[str] = []
    threads = [
        threading.Thread(target=_pump, args=(proc.stdout, out, on_line), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, err, on_line), daemon=True),
    ]
    for t in threads:
        t.start()
    if cmd.stdin is not None and proc.stdin is not None:
        _feed(proc.stdin, cmd.stdin)
    try:
        rc = proc.wait(timeout=cmd.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        for t in threads:
            t.join()
        raise CommandTimeout(
            host, cmd.masked_argv(), -9, f"killed after {cmd.timeout} s\n{''.join(err)}"
        ) from None
    for t in threads:
        t.join()
    return Result(cmd, host, rc, "".join(out), "".join(err), 0.0)


def _feed(stream: IO[str], text: str) -> None:
    try:
        stream.write(text)
        stream.close()
    except BrokenPipeError:
        pass


def _pump(stream: IO[str] | None, sink: list[str], on_line: LineSink | None) -> None:
    """Read a pipe to the end; pass each complete line (split on CR or LF) to ``on_line``."""
    if stream is None:
        return
    pending = ""
    while chunk := stream.read(1 if on_line else 65536):
        sink.append(chunk)
        if on_line is None:
            continue
        pending += chunk
        parts = _SPLIT.split(pending)
        pending = parts.pop()
        for line in parts:
            if line.strip():
                on_line(line)
    if on_line is not None and pending.strip():
        on_line(pending)
