"""Imported inside a kernel (``--IPKernelApp.exec_lines=import tests.support.kernel_delays``):
widens the two shutdown races of ipykernel that kvmops' kernel closes (kvmops/runbook/kernel.py),
as heavy CPU load does by chance. Each widening appends a line to ``$KVMOPS_DELAYS_LOG`` when it
pauses, so a test can tell that the window was really open.

- After a shutdown request, the control thread pauses 0.2 s inside ``IOPubThread.schedule``,
  between its ``is_alive()`` check and the event-pipe send.
- After the reply to a ``kernel_info_request`` is sent, its handler takes 0.5 s more to return
  (a SIGINT in that window lands inside the handler).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from ipykernel.kernelbase import Kernel

_kernel: Any = Kernel.instance()
_pub = sys.stdout.pub_thread.thread  # type: ignore[union-attr]
_is_alive = threading.Thread.is_alive


def _note(what: str) -> None:
    with open(os.environ["KVMOPS_DELAYS_LOG"], "a") as log:
        log.write(what + "\n")


def _is_alive_slowly(self: threading.Thread) -> bool:
    alive = _is_alive(self)
    if (self is _pub and alive and _kernel._shutdown_message is not None
            and threading.current_thread().name == "Control"
            and sys._getframe(1).f_code.co_name == "schedule"):
        _note("control thread paused in IOPubThread.schedule")
        time.sleep(0.2)
    return alive


_kernel_info = _kernel.shell_handlers["kernel_info_request"]


async def _kernel_info_slowly(*args: Any) -> None:
    await _kernel_info(*args)
    _note("kernel_info handler still running after its reply")
    time.sleep(0.5)


threading.Thread.is_alive = _is_alive_slowly  # type: ignore[method-assign]
_kernel.shell_handlers["kernel_info_request"] = _kernel_info_slowly
