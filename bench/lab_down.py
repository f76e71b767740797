"""How long ``kvmops lab down`` takes with the small guest running inside the lab (issue 23).

Three lab boots (a named lab ``downbench``, destroyed at the end), each timed from the call to
the lab's QEMU gone:

- *poweroff, guest running* (what ``lab down`` did before): ``systemctl poweroff`` over SSH
  while the small busybox guest runs; QEMU killed after 240 s if still there;
- *lab down, guest running*: :func:`kvmops_lab.down` (the lab's guests destroyed first);
- *lab down, no guest*: the same on a lab without guests.

Usage (root): ``.venv/bin/python bench/lab_down.py``. Results: ``bench/lab_down-results.json``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kvmops_lab as lab
from kvmops.host import connect
from kvmops.site import load_site
from kvmops_lab import procs
from kvmops_lab.guest_image import ensure_guest_image
from kvmops_lab.nested import define_small_guest, start_and_wait
from kvmops_lab.paths import LabPaths
from kvmops_lab.ssh import ssh_argv
from kvmops_lab.state import LabState

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import write_results

PATHS = LabPaths.named("downbench")
CAP = 240.0


def lab_with_guest(guest: bool) -> tuple[LabState, str]:
    """A fresh lab; with ``guest`` the small guest booted to its login prompt (left running)."""
    lab.destroy(PATHS)
    state = lab.up(PATHS, guest_image=ensure_guest_image(), say=lambda line: print(line, flush=True))
    if not guest:
        return state, "no guest"
    host = connect(load_site(state.site), apply=True)
    try:
        dom = define_small_guest(host, "downguest")
        _, verdict, _ = start_and_wait(host, dom.name, dom.log, 300.0)
    finally:
        host.close()
    return state, verdict.message


def old_poweroff(state: LabState) -> dict[str, Any]:
    t0 = time.monotonic()
    subprocess.run(ssh_argv(state, "systemctl", "poweroff", connect_timeout=5), capture_output=True, timeout=60,
                   check=False)
    gone = procs.wait_gone(state.pid, CAP)
    took = time.monotonic() - t0
    if not gone:
        procs.terminate(state.pid)
    return {"seconds": round(took, 1), "outcome": "powered off" if gone else f"still running after {CAP:.0f} s: killed"}


def new_down() -> dict[str, Any]:
    t0 = time.monotonic()
    outcome = lab.down(PATHS, say=lambda line: print(line, flush=True))
    return {"seconds": round(time.monotonic() - t0, 1), "outcome": outcome}


def main() -> None:
    results = []
    try:
        for case, guest, how in (("poweroff, guest running (before)", True, old_poweroff),
                                 ("lab down, guest running", True, None), ("lab down, no guest", False, None)):
            state, booted = lab_with_guest(guest)
            got = how(state) if how else new_down()
            results.append({"case": case, "guest": booted, **got})
            print(results[-1], flush=True)
    finally:
        lab.destroy(PATHS)
    write_results("lab_down", {"results": results, "goal": "lab down within 30 s"})


if __name__ == "__main__":
    main()
