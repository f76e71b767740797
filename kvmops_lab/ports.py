"""The SSH port on 127.0.0.1: is it free, and a free one when none was given."""

from __future__ import annotations

import errno
import socket

from kvmops_lab.errors import LabError

LOOPBACK = "127.0.0.1"


def port_free(port: int, host: str = LOOPBACK) -> bool:
    """True when nothing listens on (or holds) ``host:port``: we can bind it ourselves.

    With SO_REUSEADDR, as QEMU's port forward binds it: connections of a lab that just died
    (power cut) linger in TIME_WAIT on the port for a minute, and do not stop QEMU binding it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port(host: str = LOOPBACK) -> int:
    """A port the kernel says is free now (QEMU binds it a moment later; see ``check_port``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def check_port(port: int) -> int:
    """``port`` when it is free; otherwise a LabError that says what to do."""
    if not 0 < port < 65536:
        raise LabError(f"SSH port {port} is not a port: use 1-65535, or leave --port out")
    if not port_free(port):
        raise LabError(
            f"SSH port {port} on {LOOPBACK} is already taken by another program: "
            "pick another with --port, or leave --port out to get a free one"
        )
    return port


def port_taken_message(stderr: str) -> bool:
    """True when QEMU failed because its host forwarding port was taken."""
    return "host forwarding rule" in stderr or "Could not set up host forwarding" in stderr
