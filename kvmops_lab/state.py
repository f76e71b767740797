"""The state file of a running lab (``run/state.json``) and what a status means (pure parts)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from kvmops_lab.errors import LabError

RUNNING = "running"
STOPPED = "stopped"
STALE = "stale"


@dataclass(frozen=True)
class LabState:
    """What ``kvmops lab up`` started: QEMU's pid, the SSH port, the files it uses."""

    pid: int
    port: int
    accel: str
    image_dir: str
    run_dir: str
    key: str
    known_hosts: str
    site: str
    serial: str
    qmp: str
    started: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"


def parse_state(text: str, where: str = "state.json") -> LabState:
    """A LabState from the file's text; a clear LabError when it is not one."""
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise LabError(f"{where} is not valid JSON ({exc}): run `kvmops lab destroy`") from None
    if not isinstance(data, dict):
        raise LabError(f"{where} does not hold a JSON object: run `kvmops lab destroy`")
    want = {f.name: f.type for f in fields(LabState)}
    missing = sorted(set(want) - set(data))
    if missing:
        raise LabError(f"{where} lacks {', '.join(missing)}: run `kvmops lab destroy`")
    for name in ("pid", "port"):
        value = data[name]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise LabError(f"{where}: {name} must be a positive integer, got {value!r}")
    bad = [k for k in want if k not in ("pid", "port") and not isinstance(data[k], str)]
    if bad:
        raise LabError(f"{where}: {', '.join(bad)} must be text")
    return LabState(**{k: data[k] for k in want})


def read_state(path: Path) -> LabState | None:
    """The state file's content, or None when no lab was started."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return parse_state(text, str(path))


def classify(state: LabState | None, pid_is_our_qemu: bool) -> str:
    """``stopped`` (no state), ``running`` (its QEMU lives) or ``stale`` (state of a dead QEMU)."""
    if state is None:
        return STOPPED
    return RUNNING if pid_is_our_qemu else STALE
