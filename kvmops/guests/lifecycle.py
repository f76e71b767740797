"""The guest lifecycle of the guide (sec. 3.2, 4.1) as plans over libvirt, from facts.

Each planning function takes the host's :class:`~kvmops.hostfacts.HostFacts` (read once) and
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
from dataclasses import replace

from kvmops import names
from kvmops.errors import InvalidInput, NotFound, SafetyError
from kvmops.guests import hostfile, macs
from kvmops.guests.domain import DomainInfo
from kvmops.guests.spec import GuestSpec
from kvmops.guests.validate import check_spec
from kvmops.guests.xml import read_domain, render_domain_xml, with_uuid
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.plan import Booted, Call, GuestOff, Plan, Step, Wait
from kvmops.site import Site

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


def with_macs(facts: HostFacts, spec: GuestSpec) -> GuestSpec:
    """The spec with a MAC for each NIC: its own; else the defined guest's (a redefinition
    keeps them, libvirt would invent new ones); else chosen (:func:`kvmops.guests.macs.choose`)."""
    if spec.macs or not spec.bridges:
        return spec
    info = facts.domain(spec.name)
    if info is not None:
        have = read_domain(info.inactive_xml or info.xml).macs
        if len(have) == len(spec.bridges) and all(have):
            return replace(spec, macs=have)
    return replace(spec, macs=macs.choose(facts.site.name, spec.name, len(spec.bridges), facts.macs_taken(spec.name)))


def check_macs(facts: HostFacts, spec: GuestSpec) -> None:
    """No NIC of ``spec`` has a MAC that another guest of the host has."""
    shared = macs.collisions(spec.macs, {g: m for g, m in facts.macs_by_guest.items() if g != spec.name})
    if shared:
        raise SafetyError(f"guest {spec.name}: MAC address(es) {', '.join(shared)} taken on {facts.site.name}: "
                          "two NICs with one MAC on a network disturb both; give others (or none: kvmops "
                          "chooses free ones)")


def define(facts: HostFacts, spec: GuestSpec) -> Plan:
    """Write ``<xml_dir>/<name>.xml`` and ``virsh define`` it; validated first.

    A different existing definition (in libvirt or in the file) is replaced only with
    ``confirm=<name>``; the plan shows the difference. A running guest is never redefined.
    Every NIC gets a MAC (:func:`with_macs`), none that another guest of the host has.
    """
    site = facts.site
    spec = with_macs(facts, spec)
    check_spec(site, spec, facts.limits, facts.lvm, facts.domains)
    check_macs(facts, spec)
    _check_boot_files(facts, spec)
    xml = render_domain_xml(site, spec)
    plan = Plan(f"define guest {spec.name}")
    define_step = _define_step(facts, spec.name, xml, plan)
    _plan_file(facts, spec.name, xml, plan, show_diff=not plan.notes)
    plan.steps.append(define_step)
    plan.notes += [f"NIC {i + 1} on {bridge}: MAC {mac}" for i, (bridge, mac) in enumerate(zip(spec.bridges, spec.macs,
                                                                                              strict=True))]
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
    return Call("define", name, f"virsh define {hostfile.xml_path(site, name)}", xml=final)


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
    plan.add(f"start guest {name}", Call("start", name))
    if console_seconds > 0:
        plan.add(f"show the serial console for up to {console_seconds:g} s (until a login prompt)",
                 Wait(f"read the serial console (virsh console {name})", Booted(name, console_seconds, required=False)))
    return plan


def autostart(facts: HostFacts, name: str, on: bool = True) -> Plan:
    """``virsh autostart [--disable] NAME``: marks the guest only, does not start it."""
    info = need_domain(facts, name)
    word = "on" if on else "off"
    plan = Plan(f"autostart {word} for guest {name}")
    if info.autostart == on:
        return plan.noop(f"autostart of guest {name} is {word} already")
    flag = "" if on else "--disable "
    return plan.add(f"turn autostart {word} (the guest is not started or stopped by this)",
                    Call("autostart", name, f"virsh autostart {flag}{name}", flag=on))


# -- shutdown, destroy, undefine -------------------------------------------------------------


def shutdown(facts: HostFacts, name: str, *, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
             poll: float = 0.5) -> Plan:
    """``virsh shutdown NAME`` (ACPI), then wait up to ``timeout`` s for it to be shut off."""
    seconds(timeout, "shutdown timeout")
    info = need_domain(facts, name)
    plan = Plan(f"shut down guest {name}")
    if not info.active:
        return plan.noop(f"guest {name} is {info.state} already")
    plan.add(f"ask guest {name} to power off (ACPI)", Call("shutdown", name))
    return plan.add(f"wait up to {timeout:g} s until guest {name} is shut off",
                    Wait(f"poll libvirt until {name} is shut off", GuestOff(name, timeout, poll)))


def destroy(facts: HostFacts, name: str) -> Plan:
    """``virsh destroy NAME``: pulls the plug; the definition and disks stay. Needs confirm."""
    info = need_domain(facts, name)
    plan = Plan(f"destroy (force off) guest {name}")
    if not info.active:
        return plan.noop(f"guest {name} is {info.state} already")
    plan.notes.append("destroy is like pulling the power cord: prefer shutdown when the guest answers ACPI")
    return plan.add(f"force guest {name} off (unsaved data in the guest is lost)",
                    Call("destroy", name), target=name)


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
        plan.add(f"remove guest {name} from libvirt", Call("undefine", name), target=name)
    if facts.exists(path):
        plan.add(f"keep {path} as {path}{hostfile.UNDEFINED_SUFFIX} (restore with virsh define)",
                 hostfile.retire_cmd(path))
    return plan
