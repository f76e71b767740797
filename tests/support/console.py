"""A guest's serial console read by a test itself (its own libvirt stream), judged by kvmops'
one boot verdict: booted only for a login prompt."""

from __future__ import annotations

import time

from kvmops.guests import boot
from kvmops.host import Host


def console_verdict(host: Host, guest: str, seconds: float = 30.0) -> boot.BootVerdict:
    """Press Enter on the guest's serial console and judge what comes back with
    :mod:`kvmops.guests.boot`."""
    import libvirt

    stream = host.virt.conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
    host.virt.domain(guest).openConsole(None, stream, 0)
    got, t0 = b"", time.monotonic()
    try:
        stream.send(b"\r")
        while time.monotonic() - t0 < seconds and not boot.classify(got.decode("utf-8", "replace")).booted:
            data = stream.recv(4096)
            if isinstance(data, bytes) and data:
                got += data
            else:
                time.sleep(0.2)
    finally:
        stream.abort()
    return boot.verdict(got.decode("utf-8", "replace"), time.monotonic() - t0)
