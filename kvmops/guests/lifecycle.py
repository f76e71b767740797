"""The guest lifecycle of the guide (sec. 3.2, 4.1) as plans over libvirt, from facts.

Each planning function takes the host's :class:`~kvmops.facts.HostFacts` (read once) and
returns a :class:`Plan` whose libvirt effects are :class:`~kvmops.plan.Call` steps; nothing
changes until the executor applies it. Destructive steps (destroy, undefine, replacing a
different definition) carry the guest name as their confirm target.

Undefine keeps the XML file: it is renamed to ``<name>.xml.undefined`` (older copies get a
numbered backup suffix), so the definition can be restored with ``virsh define`` and a later
``define`` of the same name does not stumble over a stale file. Disks are never touched.
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Callable
from typing import Any

from kvmops import names
from kvmops.errors import InvalidInput, KvmopsError, LibvirtError, NotFound, SafetyError
from kvmops.facts import HostFacts, Wanted
from kvmops.guests import boot, hostfile
from kvmops.guests.spec import GuestSpec
from kvmops.guests.validate import check_spec
from kvmops.guests.xml import read_domain, render_domain_xml, with_uuid
from kvmops.host import Host
from kvmops.plan import Call, Plan, Progress, Step, Wait
from kvmops.site import Site
from kvmops.virt import AGENT_UNRESPONSIVE, DomainInfo

DEFAULT_SHUTDOWN_TIMEOUT = 120.0
MAX_SECONDS = 86400.0


def seconds(value: float, what: str, *, zero: bool = False) -> float:
    """A wait in seconds: a finite number above 0 (or 0 when ``zero``: none), at most a day."""
    low_ok = value >= 0 if zero else value > 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not low_ok \
            or value > MAX_SECONDS:
        least = "0 (none)" if zero else "more than 0"
        raise InvalidInput(f"{what} {value!r}: give seconds from {least} to {MAX_SECONDS:g}")
    return float(value)


class ShutdownTimeout(KvmopsError):
    """The guest did not power off after the ACPI request."""


def _diff(old: list[str], new: list[str], before: str, after: str) -> list[str]:
    return [ln.rstrip("\n") for ln in difflib.unified_diff(old, new, before, after, lineterm="")]


def need_domain(facts: HostFacts, name: str) -> DomainInfo:
    """The guest ``name`` from the facts; NotFound says how to list the guests."""
    info = facts.domain(names.guest_name(name))
    if info is None:
        known = ", ".join(d.name for d in facts.domains) or "none"
        raise NotFound(f"no guest {name!r} on {facts.site.name} (guests: {known}; see `kvmops guest list`)")
    return info


# -- define ----------------------------------------------------------------------------------


def define_wanted(site: Site, spec: GuestSpec) -> Wanted:
    """The facts :func:`define` needs beyond the usual: the kept XML file, the boot files."""
    paths = tuple(p for p in (spec.cdrom, spec.kernel, spec.initrd) if p)
    return Wanted(files=(hostfile.xml_path(site, spec.name),), paths=paths)


def define(facts: HostFacts, spec: GuestSpec) -> Plan:
    """Write ``<xml_dir>/<name>.xml`` and ``virsh define`` it; validated first.

    A different existing definition (in libvirt or in the file) is replaced only with
    ``confirm=<name>``; the plan shows the difference. A running guest is never redefined.
    """
    site = facts.site
    check_spec(site, spec, facts.limits, facts.lvm, facts.domains)
    _check_boot_files(facts, spec)
    xml = render_domain_xml(site, spec)
    plan = Plan(f"define guest {spec.name}")
    define_step = _define_step(facts, spec.name, xml, plan)
    _plan_file(facts, spec.name, xml, plan, show_diff=not plan.notes)
    plan.steps.append(define_step)
    return plan


def _check_boot_files(facts: HostFacts, spec: GuestSpec) -> None:
    for label, path in (("CD-ROM image", spec.cdrom), ("kernel", spec.kernel), ("initrd", spec.initrd)):
        if path and not facts.exists(path):
            raise NotFound(f"{label} {path} of guest {spec.name} does not exist on {facts.site.name}")


def _plan_file(facts: HostFacts, name: str, xml: str, plan: Plan, *, show_diff: bool) -> None:
    path = hostfile.xml_path(facts.site, name)
    kept = facts.file(path)
    if kept == xml:
        plan.noop(f"{path} holds this definition already")
        return
    if kept is None:
        plan.add(f"keep the domain XML in {path} (guide 3.2)", hostfile.write_cmd(path, xml))
        return
    if show_diff:
        plan.notes.append(f"{path} differs from the new definition:")
        plan.notes.extend("  " + ln for ln in _diff(kept.splitlines(), xml.splitlines(), path, "new"))
    plan.add(f"replace {path} (it differs)", hostfile.write_cmd(path, xml), target=name)


def define_call(site: Site, name: str, xml: str, uuid: str | None) -> Call:
    """``virsh define``; an existing guest keeps its UUID (libvirt replaces a definition only then)."""
    final = with_uuid(xml, uuid) if uuid else xml
    return Call(f"virsh define {hostfile.xml_path(site, name)}", lambda v: v.define(final, name))


def _define_step(facts: HostFacts, name: str, xml: str, plan: Plan) -> Step:
    """The libvirt step (a no-op when the definition is the same); diff notes go to ``plan``."""
    current = facts.domain(name)
    if current is None:
        return Step(f"define guest {name} in libvirt", define_call(facts.site, name, xml, None))
    defined = read_domain(current.inactive_xml or current.xml)
    old, new = defined.lines(), read_domain(xml).lines()
    if old == new:
        return Step(f"guest {name} is defined with these settings already")
    if current.active:
        raise SafetyError(
            f"guest {name} is {current.state}: kvmops does not redefine a running guest. Shut it "
            f"down first (kvmops guest shutdown {name} --apply); nothing was changed"
        )
    plan.notes.append(f"guest {name} exists with other settings:")
    plan.notes.extend("  " + ln for ln in _diff(old, new, "defined", "new"))
    call = define_call(facts.site, name, xml, defined.uuid)
    return Step(f"replace the definition of guest {name}", call, target=name)


# -- start, autostart, console ---------------------------------------------------------------


def start(facts: HostFacts, name: str, *, console_seconds: float = 0) -> Plan:
    """``virsh start NAME``; with ``console_seconds`` also show the first serial lines."""
    seconds(console_seconds, "console seconds", zero=True)
    info = need_domain(facts, name)
    plan = Plan(f"start guest {name}")
    if info.active:
        return plan.noop(f"guest {name} is {info.state} already")
    plan.add(f"start guest {name}", Call(f"virsh start {name}", lambda v: v.start(name)))
    if console_seconds > 0:
        plan.add(f"show the serial console for up to {console_seconds:g} s (until a login prompt)",
                 Wait(f"read the serial console (virsh console {name})", _show_boot(name, console_seconds)))
    return plan


def _show_boot(name: str, seconds: float) -> Callable[[Host, Progress], None]:
    """Show the console and say whether the guest booted (a login prompt) or was NOT verified
    in that time; a start is not a boot, so it does not fail the start."""
    def run(host: Host, say: Progress) -> None:
        v = wait_booted(host, name, seconds, say)
        say(f"guest {name} {v.message}" if v.booted else
            f"guest {name}: boot NOT verified in {v.seconds:.0f} s (it runs, as libvirt says; a login prompt was "
            f"not seen): {v.message}")

    return run


def autostart(facts: HostFacts, name: str, on: bool = True) -> Plan:
    """``virsh autostart [--disable] NAME``: marks the guest only, does not start it."""
    info = need_domain(facts, name)
    word = "on" if on else "off"
    plan = Plan(f"autostart {word} for guest {name}")
    if info.autostart == on:
        return plan.noop(f"autostart of guest {name} is {word} already")
    flag = "" if on else "--disable "
    return plan.add(f"turn autostart {word} (the guest is not started or stopped by this)",
                    Call(f"virsh autostart {flag}{name}", lambda v: v.set_autostart(name, on)))


def console_hint(host: Host, name: str) -> str:
    """How to attach to the serial console from a shell (the guide's sec. 4.1)."""
    names.guest_name(name)
    remote = f"-c '{host.libvirt_uri}' " if host.site.remote else ""
    return (f"virsh {remote}console {name}    # CTRL-] detaches\n"
            f"(the guest needs a getty on ttyS0 for a login prompt: guide 3.3.2)")


def read_console(host: Host, name: str, seconds: float, progress: Progress | None = None,
                 until: Callable[[str], bool] | None = None) -> str:
    """The serial console output of ``seconds`` (live, for notebooks); libvirt must support it.

    ``until`` ends the reading early: e.g. :func:`login_prompt` once the guest has booted.
    """
    info = host.virt.info(names.guest_name(name))
    if not info.active:
        raise LibvirtError(f"guest {name} is {info.state}: start it first (kvmops guest start {name})")
    return host.virt.read_console(name, seconds, progress, until)


def login_prompt(text: str) -> bool:
    """True once the console shows a login prompt (``host login:``, :mod:`kvmops.guests.boot`):
    the guest has booted. Boot-loader lines and ``Last login:`` are not one."""
    return boot.classify(text).stage == boot.LOGIN


def wait_booted(host: Host, name: str, seconds: float, progress: Progress | None = None,
                markers: tuple[str, ...] = ()) -> boot.BootVerdict:
    """Read the running guest's serial console until a login prompt (or the image's own boot
    ``markers``), a fatal stage (panic, no root, emergency mode) or ``seconds``; the verdict of
    :mod:`kvmops.guests.boot` on what it printed. Raises when the console cannot be read."""
    t0 = time.monotonic()
    text = read_console(host, name, seconds, progress, until=lambda t: _settled(boot.classify(t, markers)))
    return boot.verdict(text, time.monotonic() - t0, markers)


def _settled(state: boot.ConsoleState) -> bool:
    return state.booted or state.fatal


# -- shutdown, destroy, undefine -------------------------------------------------------------


def shutdown(facts: HostFacts, name: str, *, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
             poll: float = 0.5) -> Plan:
    """``virsh shutdown NAME`` (ACPI), then wait up to ``timeout`` s for it to be shut off."""
    seconds(timeout, "shutdown timeout")
    info = need_domain(facts, name)
    plan = Plan(f"shut down guest {name}")
    if not info.active:
        return plan.noop(f"guest {name} is {info.state} already")
    plan.add(f"ask guest {name} to power off (ACPI)", Call(f"virsh shutdown {name}", lambda v: v.shutdown(name)))
    return plan.add(f"wait up to {timeout:g} s until guest {name} is shut off",
                    Wait(f"poll libvirt until {name} is shut off", _wait_off(name, timeout, poll)))


def _wait_off(name: str, timeout: float, poll: float) -> Callable[[Host, Progress], None]:
    def run(host: Host, say: Progress) -> None:
        say(f"waiting up to {timeout:g} s for {name} to power off")
        deadline = time.monotonic() + timeout
        while host.virt.info(name).active:
            if time.monotonic() >= deadline:
                raise ShutdownTimeout(
                    f"guest {name} is still running {timeout:g} s after the ACPI power-off request: it "
                    "ignores ACPI (no acpid/systemd-logind in the guest, or it hangs). Log in and power it "
                    f"off from inside, or force it off: kvmops guest destroy {name} --apply --confirm {name}"
                )
            time.sleep(poll)

    return run


def destroy(facts: HostFacts, name: str) -> Plan:
    """``virsh destroy NAME``: pulls the plug; the definition and disks stay. Needs confirm."""
    info = need_domain(facts, name)
    plan = Plan(f"destroy (force off) guest {name}")
    if not info.active:
        return plan.noop(f"guest {name} is {info.state} already")
    plan.notes.append("destroy is like pulling the power cord: prefer shutdown when the guest answers ACPI")
    return plan.add(f"force guest {name} off (unsaved data in the guest is lost)",
                    Call(f"virsh destroy {name}", lambda v: v.destroy(name)), target=name)


def undefine_wanted(site: Site, name: str) -> Wanted:
    return Wanted(paths=(hostfile.xml_path(site, name),))


def undefine(facts: HostFacts, name: str) -> Plan:
    """``virsh undefine NAME``: removes the definition only; disks are never touched."""
    names.guest_name(name)
    plan = Plan(f"undefine guest {name}")
    path = hostfile.xml_path(facts.site, name)
    info = facts.domain(name)
    if info is None:
        plan.noop(f"guest {name} is not defined")
    elif info.active:
        raise SafetyError(
            f"guest {name} is {info.state}: shut it down first (kvmops guest shutdown {name} --apply); "
            "nothing was changed"
        )
    else:
        disks = ", ".join(read_domain(info.xml).disk_sources) or "none"
        plan.notes.append(f"disks are never touched: {disks} stay (remove LVs with `kvmops lv remove`)")
        plan.add(f"remove guest {name} from libvirt", Call(f"virsh undefine {name}", lambda v: v.undefine(name)),
                 target=name)
    if facts.exists(path):
        plan.add(f"keep {path} as {path}{hostfile.UNDEFINED_SUFFIX} (restore with virsh define)",
                 hostfile.retire_cmd(path))
    return plan


# -- live reads ------------------------------------------------------------------------------


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

