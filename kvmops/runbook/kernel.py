"""The kernel runbooks run in: ipykernel's IPython kernel, stopped cleanly.

Kernel spec ``kvmops`` (``kvmops/runbook/kernelspec/kernel.json``, installed with the package)
starts ``python -m kvmops.runbook.kernel`` over IPC (:mod:`kvmops.runbook.ipc`). Three changes
to ipykernel's shutdown (ipykernel 7.4, jupyter_client 8.10), each for a race that printed a
traceback or an error on stderr (tests/unit/test_runbook_kernel.py holds each window open):

- A shutdown request is handled on ipykernel's control thread. Its handler stops the main
  thread's loop, and only then does the control thread flush stdout/stderr and publish "idle"
  through the IOPub thread. The main thread meanwhile returns from ``start()`` and the process
  exits: atexit stops the IOPub thread and closes its event pipes, under that flush.
  ``ZMQError: Socket operation on non-socket`` (``process_control`` -> ``sys.stdout.flush`` ->
  ``IOPubThread.schedule``) when the control thread was slower. :meth:`RunbookKernelApp.start`
  lets the control thread finish before the process goes on to exit.
- jupyter_client interrupts (SIGINT) a kernel before asking it to shut down. ipykernel turns
  SIGINT into KeyboardInterrupt during every request's handler, and papermill shuts the kernel
  down as soon as the reply to its last ``kernel_info_request`` arrives, which can be before
  that handler has returned: ``KeyboardInterrupt caught in kernel``. :class:`RunbookKernel`
  interrupts only a running cell (what an interrupt is for); between cells it ignores SIGINT,
  as ipykernel does while idle.
- When the shutdown comes while a cell is still running (``kvmops run`` interrupted, a cell
  timeout: jupyter_client's SIGINT stops the cell, its shutdown request follows at once, and
  the cell may still be cleaning up), the control thread stops the shell channel's thread
  under the cell's reply: ``ZMQError`` in
  ``execute_request``. :meth:`RunbookKernel.shutdown_request` lets the cell's request finish
  first (at most :data:`CELL_WAIT` s, well within jupyter_client's wait before SIGTERM).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp
from traitlets import Type

from kvmops.runbook.secrets import take_secrets

JOIN_TIMEOUT = 30.0  # as ipykernel's own wait for its IOPub thread
CELL_WAIT = 2.0  # jupyter_client sends SIGTERM 2.5 s after its shutdown request


class RunbookKernel(IPythonKernel):
    """IPython's kernel; SIGINT interrupts a running cell and nothing else; a shutdown waits
    for the cell's request to end."""

    _in_cell = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self._no_request = threading.Event()
        self._no_request.set()

    async def execute_request(self, *args: Any) -> None:
        self._no_request.clear()
        try:
            await super().execute_request(*args)  # type: ignore[no-untyped-call]
        finally:
            self._no_request.set()

    async def shutdown_request(self, *args: Any) -> None:
        deadline = time.monotonic() + CELL_WAIT
        while not self._no_request.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await super().shutdown_request(*args)  # type: ignore[no-untyped-call]

    async def do_execute(self, *args: Any, **kwargs: Any) -> Any:
        self._in_cell = True
        try:
            return await super().do_execute(*args, **kwargs)  # type: ignore[no-untyped-call]
        finally:
            self._in_cell = False

    def pre_handler_hook(self) -> None:
        # ipykernel's post_handler_hook restores saved_sigint_handler after the handler
        self.saved_sigint_handler = signal.signal(signal.SIGINT, self._interrupt)

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        if self._in_cell:
            signal.default_int_handler(signum, frame)


class RunbookKernelApp(IPKernelApp):
    """ipykernel's application with :class:`RunbookKernel`; the control thread finishes
    before the process exits."""

    name = "kvmops-kernel"
    kernel_class = Type(RunbookKernel, klass=IPythonKernel, config=True)

    def start(self) -> None:
        super().start()  # type: ignore[no-untyped-call]
        control = self.control_thread
        if control is not None and control.is_alive():
            control.stop()  # already asked by a shutdown request; needed after exit() in a cell
            control.join(JOIN_TIMEOUT)


def main() -> None:
    # as ipykernel_launcher: the working directory is not on sys.path while ipykernel loads
    # (the kernel puts it back for the cells)
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    # Runbooks run unattended: no debugger (ipykernel skips it when debugpy cannot be imported;
    # 0.12 s of CPU at every start) and no IPython history database (each cell written to
    # ~/.ipython, shared by every kernel of the user).
    sys.modules.setdefault("debugpy", None)  # type: ignore[arg-type]
    take_secrets()  # the run's secrets into memory: out of the environment every cell's command inherits
    RunbookKernelApp.launch_instance(argv=["--HistoryManager.enabled=False", *sys.argv[1:]])


if __name__ == "__main__":
    main()
