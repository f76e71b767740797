"""The runner interface, the command log and the record of executed commands."""

from __future__ import annotations

import json
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from kvmops.cmd import Cmd, Result, strip_noise
from kvmops.errors import CommandFailed
from kvmops.runners import faults

log = logging.getLogger("kvmops.cmd")

COMMAND_LOG_ENV = "KVMOPS_COMMAND_LOG"
"""When set, every CommandRecord is also appended as one JSON line to the file it names
(the runbook engine sets it for the kernel, to put the commands into the run record)."""

LineSink = Callable[[str], None]
"""Receives each output line of a long command as it arrives (progress)."""


@dataclass(frozen=True)
class CommandRecord:
    """One executed (or, in plan mode, recorded) command, secrets masked."""

    started: str
    host: str
    command: str
    returncode: int | None
    seconds: float
    executed: bool
    mutates: bool


class Runner(ABC):
    """Executes :class:`Cmd` values on one host and records every command."""

    host: str
    keeps_reads = True  # False: its reads run nowhere (a recorded host), so they are not kept

    def __init__(self) -> None:
        self.records: list[CommandRecord] = []

    def run(self, cmd: Cmd, *, check: bool = True, on_line: LineSink | None = None) -> Result:
        """Run ``cmd``; raise :class:`CommandFailed` on a bad exit code when ``check``."""
        started = datetime.now(UTC).isoformat(timespec="seconds")
        t0 = time.monotonic()
        executes = self.executes_mutations or not cmd.mutates
        # a test hook (kvmops.runners.faults): None unless $KVMOPS_FAULT_AT is set
        fault = faults.fault_for(cmd.display(), cmd.mutates, executes)
        if fault is not None and fault.when == "before":
            result = faults.failed(cmd, self.host, fault)
        else:
            result = self._execute(cmd, on_line)
            if fault is not None:
                result = faults.failed(cmd, self.host, fault, result)
        result = Result(
            cmd=cmd,
            host=self.host,
            returncode=result.returncode,
            stdout=strip_noise(result.stdout),
            stderr=strip_noise(result.stderr),
            seconds=time.monotonic() - t0,
            executed=result.executed,
        )
        self._record(started, result)
        if check and not result.ok:
            raise CommandFailed(
                self.host, cmd.masked_argv(), result.returncode, result.stderr, result.stdout
            )
        return result

    def _record(self, started: str, result: Result) -> None:
        self.record(started, result.cmd.display(), result.cmd.mutates,
                    result.returncode if result.executed else None, result.seconds)

    def record(self, started: str, display: str, mutates: bool, returncode: int | None,
               seconds: float) -> CommandRecord:
        """Keep one effect (a command, or a libvirt call the executor made) in the record and
        the log; ``returncode`` None: planned, not executed."""
        rec = CommandRecord(
            started=started,
            host=self.host,
            command=display,
            returncode=returncode,
            seconds=round(seconds, 3),
            executed=returncode is not None,
            mutates=mutates,
        )
        self.records.append(rec)
        _append_to_log(rec)
        verb = "ran" if rec.executed else "planned"
        log.info("%s %s on %s: %s -> %s in %.2fs", started, verb, self.host, rec.command, rec.returncode,
                 rec.seconds)
        return rec

    @abstractmethod
    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        """Execute for real and return the raw result (host/seconds are filled in by run)."""

    @property
    def executes_mutations(self) -> bool:
        """False for the plan runner: mutating commands are only recorded."""
        return True

    def stream_argv(self, cmd: Cmd) -> list[str]:
        """The local argv that runs ``cmd`` on this runner's host as a process whose stdin or
        stdout the caller streams (:mod:`kvmops.runners.stream`): the same quoting and SSH
        options as :meth:`run`. Runners that execute nothing refuse."""
        raise CommandFailed(self.host, cmd.masked_argv(), 1,
                            f"{type(self).__name__} cannot stream data: it executes nothing on {self.host}")

    def close(self) -> None:
        """Release connections (SSH master); a no-op for local runners."""


def _append_to_log(rec: CommandRecord) -> None:
    """Append ``rec`` as a JSON line to ``$KVMOPS_COMMAND_LOG`` (when set)."""
    path = os.environ.get(COMMAND_LOG_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(asdict(rec)) + "\n")
