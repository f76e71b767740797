"""The plan runner: runs read-only commands through another runner, never mutating ones."""

from __future__ import annotations

from kvmops.cmd import Cmd, Result
from kvmops.runners.base import LineSink, Runner


class PlanRunner(Runner):
    """Records mutating commands without executing them.

    Read-only fact commands go to ``inner`` (when given) so that plans are computed from the
    real state; without ``inner`` they are recorded too and return empty output.
    """

    def __init__(self, inner: Runner | None = None, host: str | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.host = host or (inner.host if inner else "plan")

    @property
    def executes_mutations(self) -> bool:
        return False

    def _record(self, started: str, result: Result) -> None:
        """A read that ran nowhere (a recorded host answered it from its recording) is not kept."""
        if result.executed or result.cmd.mutates or self.inner is None or self.inner.keeps_reads:
            super()._record(started, result)

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        if cmd.mutates or self.inner is None:
            return Result(cmd, self.host, 0, "", "", 0.0, executed=False)
        return self.inner._execute(cmd, on_line)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
