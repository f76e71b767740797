"""Whether a run left a lock behind: an owner line, or a lock file some process still holds.

The lock files themselves stay (kvmops.lock: removing a flock's file while another run waits
on it would give two holders); an unheld one is no lock.
"""

from __future__ import annotations

import fcntl
from pathlib import Path


def held_locks(folder: Path) -> list[str]:
    """The names in ``folder`` that say a lock is still taken (empty when the folder is missing)."""
    if not folder.is_dir():
        return []
    left = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".owner" or (path.suffix == ".lock" and _held(path)):
            left.append(path.name)
    return left


def _held(path: Path) -> bool:
    with path.open("rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False
