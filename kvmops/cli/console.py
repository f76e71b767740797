"""An interactive serial console, as ``virsh console NAME`` (guide 4.1), over the site's
libvirt connection (locally, or through the SSH runner's forwarded socket).

The terminal goes into raw mode (every key, CTRL-C included, goes to the guest); CTRL-]
detaches, as in virsh. What the guest prints is written to the terminal from libvirt's event
thread; the terminal's mode is restored on every way out. Without a terminal on stdin there
is nothing to attach: :func:`attach` refuses and says how to attach from a shell.
"""

from __future__ import annotations

import os
import select
import termios
import tty

from kvmops import names
from kvmops.errors import KvmopsError, LibvirtError
from kvmops.host import Host
from kvmops.virt import ESCAPE, ConsoleStream


class NoTerminal(KvmopsError):
    """stdin is not a terminal: an interactive console needs one."""


def attach(host: Host, name: str, stdin: int = 0, stdout: int = 1) -> str:
    """Attach the terminal on ``stdin``/``stdout`` to the guest's serial console until CTRL-]
    or until the guest closes it; returns why it ended."""
    names.guest_name(name)
    info = host.virt.info(name)
    if not info.active:
        raise LibvirtError(f"guest {name} is {info.state}: start it first (kvmops guest start {name} --apply)")
    if not os.isatty(stdin):
        raise NoTerminal(f"stdin is not a terminal: there is nothing to attach to the console of {name}")
    saved = termios.tcgetattr(stdin)
    with host.virt.open_console(name) as console:
        os.write(stdout, f"Connected to guest {name} on {host.name}\r\nEscape character is ^] (CTRL-])\r\n".encode())
        console.start(lambda data: _write(stdout, data))
        tty.setraw(stdin)
        try:
            why = _pump(stdin, console)
        finally:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
    os.write(stdout, f"\n{why}\n".encode())
    return why


def _pump(stdin: int, console: ConsoleStream) -> str:
    """Keys to the guest until CTRL-] (or the console closes)."""
    while not console.closed.is_set():
        ready, _, _ = select.select([stdin], [], [], 0.2)
        if not ready:
            continue
        data = os.read(stdin, 1024)
        if not data:
            return "detached: stdin closed"
        head, escape, _ = data.partition(ESCAPE)
        if head:
            console.send(head)
        if escape:
            return "detached (CTRL-])"
    return "the console closed (the guest stopped?)"


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
        except OSError:
            return  # the terminal went away: nothing to show it on
