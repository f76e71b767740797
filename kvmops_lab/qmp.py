"""A minimal QMP client: ``{"execute": "system_powerdown"}`` to QEMU's monitor socket."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any


def qmp(sock_path: Path, command: str, timeout: float = 5.0) -> dict[str, Any]:
    """Run one QMP command; returns QEMU's answer. OSError when QEMU is not there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        reader = s.makefile("r")
        json.loads(reader.readline())  # greeting
        for execute in ("qmp_capabilities", command):
            s.sendall(json.dumps({"execute": execute}).encode() + b"\n")
            answer = _answer(reader)
        return answer


def _answer(reader: Any) -> dict[str, Any]:
    """The next line that is a return or error (events are skipped)."""
    while True:
        line = reader.readline()
        if not line:
            raise OSError("QMP socket closed")
        msg: dict[str, Any] = json.loads(line)
        if "return" in msg or "error" in msg:
            return msg
