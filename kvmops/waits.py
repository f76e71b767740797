"""The waits of plans, carried out: what a :class:`~kvmops.plan.Wait` waits for, read from the
live host until it holds or its time is up (the executor calls :func:`wait`).

Each kind reads through the host's runner or its libvirt adapter, so it is recorded like
every command; what the output means is decided by the areas' parsers.
"""

from __future__ import annotations

import time

from kvmops.errors import KvmopsError, NotFound
from kvmops.guestlive import wait_booted
from kvmops.host import Host
from kvmops.lvm.facts import lvs_cmd, parse_lvs
from kvmops.net import iplink
from kvmops.plan import Booted, BridgeGone, BridgeReady, GuestOff, MergeDone, Progress, Until


class WaitFailed(KvmopsError):
    """What a step waited for did not happen (in time)."""


class MergeNotFinished(WaitFailed):
    """The merge did not finish in time, or was delayed because the origin is open."""


class ShutdownTimeout(WaitFailed):
    """The guest did not power off after the ACPI request."""


class BootNotVerified(WaitFailed):
    """A guest's boot was not verified: no login prompt on its console in time."""


def wait(host: Host, until: Until, say: Progress) -> None:
    """Wait until ``until`` holds on ``host``; raises a :class:`WaitFailed` that says what to do."""
    if isinstance(until, MergeDone):
        merge_done(host, until, say)
    elif isinstance(until, GuestOff):
        guest_off(host, until, say)
    elif isinstance(until, Booted):
        booted(host, until, say)
    elif isinstance(until, BridgeGone):
        bridge_gone(host, until, say)
    elif isinstance(until, BridgeReady):
        bridge_ready(host, until, say)
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"unknown wait {until!r}")


def merge_done(host: Host, m: MergeDone, say: Progress) -> None:
    """Poll ``lvs VG`` until the snapshot is gone and the origin no longer merges (guide 4.2.5:
    lvconvert goes on for some time even after it reported "Merged: 100.00%")."""
    vg, snap, origin = m.vg, m.snap, m.origin
    deadline = time.monotonic() + m.timeout
    last = ""
    while True:
        lvs = {lv.name: lv for lv in parse_lvs(host.run(lvs_cmd(vg)).stdout)}
        snap_lv, origin_lv = lvs.get(snap), lvs.get(origin)
        if snap_lv is None and (origin_lv is None or not origin_lv.merging):
            say(f"merge finished: {vg}/{snap} is gone, {vg}/{origin} holds the snapshot's state")
            return
        if origin_lv is not None and origin_lv.open and snap_lv is not None:
            raise MergeNotFinished(
                f"the merge of {vg}/{snap} is delayed because {vg}/{origin} is open: stop the guest "
                f"or unmount it; it completes on the next activation (lvchange -an then -ay {vg}/{origin})"
            )
        note = f"merging {vg}/{snap}: {snap_lv.data_percent if snap_lv else '?'}% of changes left"
        if note != last:
            say(note)
            last = note
        if time.monotonic() > deadline:
            raise MergeNotFinished(
                f"the merge of {vg}/{snap} still runs after {m.timeout:.0f}s; it continues in the kernel. "
                f"Check with `lvs -a {vg}` and do not start the guest before it is done"
            )
        time.sleep(m.poll)


def guest_off(host: Host, g: GuestOff, say: Progress) -> None:
    name = g.guest
    say(f"waiting up to {g.timeout:g} s for {name} to power off")
    deadline = time.monotonic() + g.timeout
    while host.virt.info(name).active:
        if time.monotonic() >= deadline:
            raise ShutdownTimeout(
                f"guest {name} is still running {g.timeout:g} s after the ACPI power-off request: it "
                "ignores ACPI (no acpid/systemd-logind in the guest, or it hangs). Log in and power it "
                f"off from inside, or force it off: kvmops guest destroy {name} --apply --confirm {name}"
            )
        time.sleep(g.poll)


def booted(host: Host, b: Booted, say: Progress) -> None:
    """The one boot check: a login prompt on the serial console (:mod:`kvmops.guests.boot`)."""
    v = wait_booted(host, b.guest, b.seconds, say)
    if v.booted:
        say(f"guest {b.guest} {v.message}")
        return
    if b.required:
        text = f"guest {b.guest}: boot NOT verified in {v.seconds:.0f} s: {v.message}"
        raise BootNotVerified(text + (f". {b.way_out}" if b.way_out else ""))
    say(f"guest {b.guest}: boot NOT verified in {v.seconds:.0f} s (it runs, as libvirt says; a login prompt was "
        f"not seen): {v.message}")


def bridge_gone(host: Host, g: BridgeGone, say: Progress) -> None:
    """NetworkManager deletes the interface shortly after ``connection delete`` returns."""
    deadline = time.monotonic() + g.timeout
    while host.run(iplink.link_cmd(g.bridge)).returncode == 0:
        if time.monotonic() > deadline:
            raise WaitFailed(f"{g.bridge} still exists {g.timeout:g} s after its profile was deleted: "
                             f"remove it with `ip link delete {g.bridge}`")
        time.sleep(0.2)
    say(f"{g.bridge} is gone")


def bridge_ready(host: Host, r: BridgeReady, say: Progress) -> None:
    """After apply: the real bridge has ageing time 0 and no address; report its ports."""
    from kvmops.facts.net import read_net

    facts = read_net(host.runner)
    link = facts.link(r.bridge)
    if link is None or not link.is_bridge:
        raise NotFound(f"{r.bridge} is not a bridge on {host.runner.host} after activation: "
                       "see `journalctl -u NetworkManager`")
    if link.ageing_cs != 0:
        raise WaitFailed(f"{r.bridge} has ageing time {link.ageing_seconds:g} s, expected 0")
    if link.addresses:
        raise WaitFailed(f"{r.bridge} has addresses {', '.join(link.addresses)}, expected none")
    ports = ", ".join(p.name for p in facts.ports(r.bridge)) or "none yet"
    say(f"{r.bridge}: ageing time 0, no address, STP {'on' if link.stp_state else 'off'}, ports: {ports}")
