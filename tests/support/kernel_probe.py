"""Start one kernel the way nbclient does, drive it through a scenario, shut it down; print
what was seen as JSON on stdout. The kernel inherits this process's stderr, so the caller
reads the kernel's noise there.

    python -m tests.support.kernel_probe KERNEL SCENARIO [DELAYS_LOG]

Scenarios: ``run`` (one cell); ``interrupt-cell`` (interrupt a running cell);
``shutdown-in-cell`` (shut down while a cell runs that cleans up when interrupted, as after
Ctrl-C); ``interrupt-after-reply``
(interrupt right after the reply to ``kernel_info_request``, as jupyter_client's shutdown does
after papermill's last request). With DELAYS_LOG the kernel loads
:mod:`tests.support.kernel_delays`, holding the window of the scenario's race open (``run``:
the control thread's, ``interrupt-after-reply``: the reply's).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

TOP = Path(__file__).resolve().parents[2]
# all papermill itself says on stderr about a run that went well (no warning, no kernel noise)
PAPERMILL_SAYS = ("Input Notebook:", "Output Notebook:", "Executing notebook with kernel:")
# a cell that cleans up for a second when interrupted (as a runbook's step releases a lock)
CLEANS_UP = "import time\ntry:\n    time.sleep(30)\nfinally:\n    time.sleep(1.0)\n"


def _execute(kc: Any, code: str, timeout: float = 30) -> dict[str, Any]:
    reply: dict[str, Any] = kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)
    return dict(reply["content"])


def _scenario(km: KernelManager, kc: Any, name: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    if name == "run":
        seen["reply"] = _execute(kc, "print('hello')")["status"]
    elif name == "interrupt-cell":
        msg_id = kc.execute("import time; time.sleep(30)")
        time.sleep(1.0)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=20)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=20)
        seen["reply"] = reply["content"]["status"]
        seen["ename"] = reply["content"].get("ename")
    elif name == "shutdown-in-cell":  # as nbclient after Ctrl-C: interrupt, then shutdown at once
        kc.execute(CLEANS_UP)
        time.sleep(1.0)
    elif name == "interrupt-after-reply":
        _execute(kc, "0")  # a cell first: kernel_delays holds only later kernel_info handlers
        kc.kernel_info()
        kc.get_shell_msg(timeout=20)
        km.interrupt_kernel()
        time.sleep(1.0)
        seen["after"] = _execute(kc, "1 + 1")["status"]
    else:
        raise SystemExit(f"unknown scenario {name}")
    return seen


def main(kernel: str, scenario: str, delays_log: str | None) -> None:
    extra = []
    if delays_log:
        os.environ["KVMOPS_DELAYS_LOG"] = delays_log
        os.environ["KVMOPS_DELAYS"] = "reply" if scenario == "interrupt-after-reply" else "control"
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOP), os.environ.get("PYTHONPATH")]))
        extra = ["--IPKernelApp.exec_lines=import tests.support.kernel_delays"]
    # a held window may outlast jupyter_client's default wait before SIGTERM (2.5 s): wait longer
    km = KernelManager(kernel_name=kernel, **({"shutdown_wait_time": 20.0} if delays_log else {}))
    km.start_kernel(extra_arguments=extra)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        seen = _scenario(km, kc, scenario)
        seen["transport"], seen["ip"] = km.transport, km.ip
    finally:
        km.shutdown_kernel()
        kc.stop_channels()
    seen["ipc_folder_left"] = km.transport == "ipc" and Path(km.ip).parent.exists()
    print(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
