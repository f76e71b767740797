"""Live reads of a guest over libvirt: its serial console, its boot, its guest agent.

These do I/O through the host's libvirt adapter; what the console text means is decided by
the pure :mod:`kvmops.guests.boot`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kvmops import names
from kvmops.errors import LibvirtError
from kvmops.guests import boot
from kvmops.host import Host
from kvmops.plan import Progress

AGENT_UNRESPONSIVE = 86  # libvirt's VIR_ERR_AGENT_UNRESPONSIVE


def console_hint(host: Host, name: str) -> str:
    """How to attach to the serial console from a shell (the guide's sec. 4.1)."""
    import shlex

    names.guest_name(name)
    remote = f"-c {shlex.quote(host.libvirt_uri)} " if host.site.remote else ""
    return (f"virsh {remote}console {name}    # CTRL-] detaches\n"
            f"(the guest needs a getty on ttyS0 for a login prompt: guide 3.3.2)")


def read_console(host: Host, name: str, seconds: float, progress: Progress | None = None,
                 until: Callable[[str], bool] | None = None) -> str:
    """The serial console output of ``seconds`` (live, for notebooks); libvirt must support it.

    ``until`` ends the reading early: e.g. :func:`kvmops.guests.boot.login_prompt` once the
    guest has booted.
    """
    info = host.virt.info(names.guest_name(name))
    if not info.active:
        raise LibvirtError(f"guest {name} is {info.state}: start it first (kvmops guest start {name})")
    return host.virt.read_console(name, seconds, progress, until)


def wait_booted(host: Host, name: str, seconds: float, progress: Progress | None = None,
                markers: tuple[str, ...] = ()) -> boot.BootVerdict:
    """Read the running guest's serial console until a login prompt (or the image's own boot
    ``markers``), a fatal stage (panic, no root, emergency mode) or ``seconds``; the verdict of
    :mod:`kvmops.guests.boot` on what it printed. Raises when the console cannot be read."""
    t0 = time.monotonic()
    text = read_console(host, name, seconds, progress, until=lambda t: boot.settled(boot.classify(t, markers)))
    return boot.verdict(text, time.monotonic() - t0, markers)


def guest_info(host: Host, name: str) -> dict[str, Any]:
    """``virsh guestinfo NAME``: needs a running guest with the QEMU guest agent."""
    info = host.virt.info(names.guest_name(name))
    if not info.active:
        raise LibvirtError(f"guest {name} is {info.state}: guestinfo needs a running guest "
                           "with the QEMU guest agent")
    try:
        return host.virt.guest_info(name)
    except LibvirtError as exc:
        if getattr(exc, "code", None) == AGENT_UNRESPONSIVE:
            raise LibvirtError(
                f"guest {name} runs, but its QEMU guest agent does not answer: install and start "
                "qemu-guest-agent inside the guest (the domain has the org.qemu.guest_agent.0 "
                f"channel), or use the serial console (virsh console {name})"
            ) from exc
        raise
