"""Imported inside a kernel (``--IPKernelApp.exec_lines=import tests.support.kernel_delays``):
holds open the windows of two shutdown races of ipykernel that kvmops' kernel closes
(kvmops/runbook/kernel.py), as heavy CPU load does by chance. Each pause appends what happened
to ``$KVMOPS_DELAYS_LOG``, so a test can tell that the window was open and what came of it.
``$KVMOPS_DELAYS`` names the window to hold: ``control`` or ``reply``.

- After the shutdown request's handler returned, the control thread pauses (once) inside
  ``IOPubThread.schedule``, between its ``is_alive()`` check and the event-pipe send, until
  that pipe is closed (ipykernel's atexit stops the IOPub thread and closes the pipes when the
  main thread exits first) or :data:`HOLD` seconds passed.
- After the reply to a ``kernel_info_request`` once a cell has run, its handler returns only
  when the client's SIGINT has reached the kernel's SIGINT handler (whatever that handler
  does), or after :data:`REPLY_HOLD` seconds, a safety net only.

:data:`HOLD` is longer than the control window takes to close under heavy load; the probe
(tests/support/kernel_probe.py) waits 20 s before jupyter_client's SIGTERM instead of 2.5 s.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

import zmq
from ipykernel.iostream import IOPubThread
from ipykernel.kernelbase import Kernel

HOLD = 3.0
REPLY_HOLD = 120.0  # the reply window closes when the SIGINT came: this bound only keeps a lost one from hanging
_kernel: Any = Kernel.instance()
_no_cell_yet = _kernel.execution_count  # IPython counts from 1; exec_lines do not count
_pub_thread = sys.stdout.pub_thread  # type: ignore[union-attr]
_pub = _pub_thread.thread
_is_alive = threading.Thread.is_alive
_once: list[bool] = []


def _note(what: str) -> None:
    with open(os.environ["KVMOPS_DELAYS_LOG"], "a") as log:
        log.write(what + "\n")


def _until(done: Any, hold: float = HOLD) -> bool:
    """Sleep until ``done()`` or ``hold`` seconds; whether ``done()`` came true."""
    end = time.monotonic() + hold
    while time.monotonic() < end:
        if done():
            return True
        time.sleep(0.01)
    return False


def _callers() -> list[str]:
    """Who called is_alive(): the function names up the stack, nearest first."""
    frame, names = sys._getframe(3), []  # past _callers, _after_the_shutdown_handler, is_alive
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names


def _after_the_shutdown_handler() -> bool:
    """In process_control's flush after the shutdown handler returned (the issue's traceback:
    process_control -> sys.stdout.flush -> IOPubThread.schedule)."""
    callers = _callers()
    return (callers[0] == "schedule" and "process_control" in callers and "shutdown_request" not in callers
            and _kernel._shutdown_message is not None)


def _is_alive_slowly(self: threading.Thread) -> bool:
    alive = _is_alive(self)
    if self is _pub and alive and not _once and threading.current_thread().name == "Control" \
            and _after_the_shutdown_handler():
        _once.append(True)
        pipe = _pub_thread._event_pipe  # this (control) thread's own, as schedule() will use
        stopped = _until(lambda: pipe.closed)
        _note("control thread paused in IOPubThread.schedule: "
              + ("the IOPub thread stopped meanwhile" if stopped else "the IOPub thread kept running"))
    return alive


_schedule = IOPubThread.schedule


def _schedule_noting(self: IOPubThread, f: Any) -> None:
    """IOPubThread.schedule, noting the race's error where it happens (whether its traceback
    then reaches the kernel's stderr depends on how far the teardown has got)."""
    try:
        _schedule(self, f)
    except zmq.ZMQError as exc:
        _note(f"IOPubThread.schedule raised ZMQError: {exc}")
        raise


_kernel_info = _kernel.shell_handlers["kernel_info_request"]


async def _kernel_info_slowly(*args: Any) -> None:
    if _kernel.execution_count == _no_cell_yet:  # the client's wait_for_ready
        await _kernel_info(*args)
        return
    handler, came = signal.getsignal(signal.SIGINT), []  # the kernel's, for this request

    def _came(signum: int, frame: Any) -> None:
        came.append(signum)
        handler(signum, frame)  # type: ignore[operator]

    signal.signal(signal.SIGINT, _came)  # before the reply: the client interrupts on it
    try:
        await _kernel_info(*args)
        _until(lambda: came, REPLY_HOLD)
    except KeyboardInterrupt:
        _note("kernel_info handler paused after its reply: interrupted")
        raise
    finally:
        signal.signal(signal.SIGINT, handler)
    _note("kernel_info handler paused after its reply: "
          + ("not interrupted" if came else f"no interrupt came within {REPLY_HOLD:.0f} s"))


if os.environ["KVMOPS_DELAYS"] == "control":
    threading.Thread.is_alive = _is_alive_slowly  # type: ignore[method-assign]
    IOPubThread.schedule = _schedule_noting  # type: ignore[method-assign]
elif os.environ["KVMOPS_DELAYS"] == "reply":
    _kernel.shell_handlers["kernel_info_request"] = _kernel_info_slowly
