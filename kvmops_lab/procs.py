"""QEMU processes of the lab: recognised by their command line naming the lab's run folder.

Only processes whose argv[0] is a qemu-system binary AND whose arguments name files under
the run folder are ever signalled; nothing is matched by a broad name.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def cmdline(pid: int) -> tuple[str, ...]:
    """The argv of a process, or () when it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)


def is_lab_qemu(argv: tuple[str, ...], run_dir: Path) -> bool:
    """True for ``qemu-system-* ... file=<run_dir>/...`` (pure)."""
    if not argv or not os.path.basename(argv[0]).startswith("qemu-system"):
        return False
    mark = str(run_dir) + "/"
    return any(mark in a for a in argv[1:])


def lab_qemus(run_dir: Path) -> list[int]:
    """Every live lab QEMU of this run folder (also one whose state file was lost)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and is_lab_qemu(cmdline(int(entry.name)), run_dir):
            found.append(int(entry.name))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.5)
    return not alive(pid)


def terminate(pid: int, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_gone(pid, wait):
            return
