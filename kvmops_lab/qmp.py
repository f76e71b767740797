"""A minimal QMP client: ``{"execute": "system_powerdown"}`` (or any command with arguments) to
QEMU's monitor socket."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any


def qmp(sock_path: Path, command: str, timeout: float = 5.0,
        arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one QMP command (with ``arguments``); returns QEMU's answer. OSError when QEMU
    is not there. E.g. ``qmp(sock, "human-monitor-command", arguments={"command-line":
    "hostfwd_add n0 tcp:127.0.0.1:4000-10.0.2.15:10809"})``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        reader = s.makefile("r")
        json.loads(reader.readline())  # greeting
        for execute, args in (("qmp_capabilities", None), (command, arguments)):
            msg: dict[str, Any] = {"execute": execute}
            if args is not None:
                msg["arguments"] = args
            s.sendall(json.dumps(msg).encode() + b"\n")
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
