"""guest-unreachable: why a guest does not answer, from the host, and what to do next.

The reports, each a function the runbook calls and shows: its state and disks (from the
facts: :func:`state`, :func:`state_table`, :func:`disk_table`), its serial console
(:func:`console`) and serial log (:func:`serial_log`), its disk read-only
(:func:`look_at_disk`, :mod:`kvmops.procedures.guest_inspect`). The one change, a forced
power-off (``virsh destroy``), is a phase of :func:`procedure` with its confirmation. What was
seen is kept in :class:`Findings`; :func:`suggestions` turns it into the next steps (pure).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kvmops import guestlive
from kvmops.cmd import read
from kvmops.errors import LibvirtError
from kvmops.executor import Procedure
from kvmops.guests import boot, lifecycle
from kvmops.guests.xml import read_domain
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.images.inspect import DiskReport
from kvmops.lvm.paths import lv_path
from kvmops.plan import Plan, Progress
from kvmops.procedures import guest_inspect
from kvmops.procedures.base import Table, single

MISSING = "LV MISSING"
INACTIVE = "LV not active"
SIGNS = (  # what a console, log or journal line says -> what to do (first match wins per line)
    (re.compile(r"Kernel panic"), "the kernel panicked: read the lines before the panic (a missing root device "
                                  "or initramfs, a bad kernel update: boot the previous kernel from GRUB)"),
    (re.compile(r"emergency mode|Give root password for maintenance|Dependency failed for"),
     "it stopped in emergency mode: usually a wrong /etc/fstab entry or a filesystem that needs fsck; fix "
     "fstab offline (image-tweak cannot: edit it with guest-inspect's mount, or log in on the console)"),
    (re.compile(r"Out of memory|oom-kill|invoked oom-killer"),
     "the kernel killed processes for lack of memory (OOM): give the guest more memory or find the leak"),
    (re.compile(r"No space left on device"), "a filesystem is full: free space (see df below) or grow it "
                                             "(guest-resize)"),
    (re.compile(r"blocked for more than \d+ seconds|hung_task"),
     "tasks hang on I/O: check the host's storage (VG full? snapshot invalid?) and the guest's disk"),
    (re.compile(r"(?i)fsck.*(error|fail)|UNEXPECTED INCONSISTENCY"),
     "the filesystem needs a manual fsck: run it from the console's emergency shell"),
)


@dataclass(frozen=True)
class DiskState:
    source: str
    status: str  # LV present, LV MISSING, LV not active, not an LV of the site's VG


@dataclass
class Findings:
    """What the steps saw; filled in as they run."""

    guest: str
    state: str
    active: bool
    autostart: bool
    bridges: tuple[str, ...]
    disks: tuple[DiskState, ...]
    serial_log: str | None
    console: str | None = None  # None: not read; "" silent; else what it printed
    console_readable: bool = True
    serial_tail: str = ""
    report: DiskReport | None = None
    seen: list[str] = field(default_factory=list)


def state(facts: HostFacts, guest: str) -> Findings:
    """The guest's state, autostart, bridges and disks (each LV present?) from the facts."""
    info = lifecycle.need_domain(facts, guest)
    dom = read_domain(info.xml)
    disks = tuple(DiskState(s, _disk_status(facts, s)) for s in dom.disk_sources)
    f = Findings(guest, info.state, info.active, info.autostart, tuple(dom.bridges), disks, dom.serial_log)
    f.seen.append(f"state: {info.state}")
    f.seen += [f"its disk {d.source}: {d.status}" for d in disks if d.status in (MISSING, INACTIVE)]
    return f


def _disk_status(facts: HostFacts, source: str) -> str:
    path = lv_path(source)
    if path is None or not path.startswith(facts.site.vg + "/"):
        return "not an LV of the site's VG"
    lv = facts.lvm.get(path.split("/", 1)[1])
    if lv is None:
        return MISSING
    return INACTIVE if lv.active is False else "LV present"


def state_table(f: Findings) -> Table:
    return Table([(f.guest, f.state, "on" if f.autostart else "off", ", ".join(f.bridges) or "-")],
                 ("guest", "state", "autostart", "bridges"))


def disk_table(f: Findings) -> Table:
    return Table([(d.source, d.status) for d in f.disks], ("disk", "status"))


def console(host: Host, f: Findings, seconds: float, say: Progress) -> str:
    """What a running guest prints on its serial console for ``seconds`` (0: not read)."""
    if not f.active:
        return f"guest {f.guest} is {f.state}: no console to read"
    if not seconds:
        return "console reading skipped (seconds=0)"
    return read_console(host, f, seconds, say)


def read_console(host: Host, f: Findings, seconds: float, say: Progress) -> str:
    """What the running guest prints on its serial console for ``seconds`` (read-only)."""
    try:
        text = guestlive.read_console(host, f.guest, seconds, say)
    except LibvirtError as exc:
        f.console_readable = False
        f.seen.append("console: not readable from here")
        return f"NOTE: the console cannot be read from here: {exc}\n{guestlive.console_hint(host, f.guest)}"
    f.console = text
    said = text.strip().splitlines()
    f.seen.append("console: " + (f"printed: {said[-1]}" if said else "silent"))
    return f"({len(said)} lines in {seconds:g} s)" if said else f"(nothing printed in {seconds:g} s)"


def serial_log(host: Host, f: Findings, lines: int) -> str:
    """The last lines of the guest's serial log file on the host (``<log file=.../>``)."""
    if not f.serial_log:
        return (f"guest {f.guest} has no serial log file configured (add <log file='/var/log/libvirt/qemu/"
                f"{f.guest}-serial.log' append='on'/> to its <serial> element to keep one)")
    res = host.run(read("tail", "-n", str(lines), "--", f.serial_log, ok=(0, 1)))
    f.serial_tail = res.stdout
    if res.stdout.strip():
        f.seen.append(f"serial log ends with: {res.stdout.strip().splitlines()[-1]}")
    return res.stdout.rstrip() or f"(cannot read {f.serial_log}: {res.stderr.strip() or 'empty'})"


def destroy(facts: HostFacts, guest: str, asked: bool) -> Plan:
    """``virsh destroy`` (confirm = the guest's name) when asked, else a no-op saying so."""
    if not asked:
        return Plan(f"destroy guest {guest}").noop("not asked for (destroy=False)")
    return lifecycle.destroy(facts, guest)


def procedure(facts: HostFacts, guest: str, asked: bool) -> Procedure:
    """The runbook's one change: the forced power-off when asked (:func:`destroy`), with its
    confirmation judged before it; planned again from fresh facts just before it runs."""
    return single(facts, f"force guest {guest} off", lambda f: destroy(f, guest, asked))


def disk_source(f: Findings) -> dict[str, str] | None:
    """The system disk to inspect: ``{"lv": "VG/LV"}`` or ``{"image": PATH}``; None: no disk."""
    if not f.disks:
        return None
    first = f.disks[0].source
    path = lv_path(first)
    return {"lv": path} if path else {"image": first}


@dataclass(frozen=True)
class DiskLook:
    """The disk report: the inspection's commands (none when it is not inspected), and what it read or why not."""

    plans: tuple[Plan, ...]
    text: str


def look_at_disk(host: Host, f: Findings, destroy: bool, lines: int) -> DiskLook:
    """Only a guest that is off: its system disk read-only (:func:`guest_inspect.look_inside`,
    the findings keep the report); a running one only with ``destroy`` (its plan, in plan mode)."""
    where = disk_source(f)
    if where is None:
        return DiskLook((), f"guest {f.guest} has no disk")
    if f.active and not destroy:
        return DiskLook((), f"not inspected: guest {f.guest} is {f.state} (its disk is in use); set destroy=True "
                            "to force it off first, or shut it down")
    preview = guest_inspect.preview(where, lines)
    if f.active:
        return DiskLook((preview,), "planned after the destroy (plan only: the guest still runs)")
    seen = guest_inspect.look_inside(host, f.guest, where, lines)
    if seen.report is not None:
        with_report(f, seen.report)
    return DiskLook((preview,), seen.render())


def seen_lines(f: Findings) -> list[str]:
    return [f"seen: {s}" for s in f.seen]


def next_steps(f: Findings) -> str:
    """The :func:`suggestions` as a markdown list."""
    return "**Next:**\n" + "\n".join(f"- {tip}" for tip in suggestions(f))


def with_report(f: Findings, report: DiskReport) -> None:
    f.report = report
    f.seen.append(f"disk: {report.os_name}, root {report.root}")
    f.seen += [f"disk: {n}" for n in report.notes]


def refresh(f: Findings, facts: HostFacts) -> None:
    """The guest's state as it is now (after a destroy)."""
    info = lifecycle.need_domain(facts, f.guest)
    f.state, f.active, f.autostart = info.state, info.active, info.autostart


def suggestions(f: Findings) -> list[str]:
    """What to do next, from what was seen (pure)."""
    tips = []
    if any(d.status == MISSING for d in f.disks):
        tips.append("a disk LV is missing: restore it (lv-restore from a snapshot, or from a backup) before "
                    "starting the guest; `inventory` shows the LVs")
    if any(d.status == INACTIVE for d in f.disks):
        tips.append("a disk LV is not active: `lvchange -ay VG/LV` (a merge interrupted by a reboot resumes "
                    "on activation: wait for it)")
    tips += _signs(f)
    if f.state in ("shut off", "shutoff", "crashed"):
        tips.append(f"start it and watch it boot: guest-lifecycle guest={f.guest} action=start seconds=120")
        if not f.autostart:
            tips.append("autostart is off: it will not come back after a host reboot (guest-lifecycle "
                        "action=autostart)")
    elif f.state == "paused":
        tips.append(f"it is paused (often: the host's VG or disk was full): free space, then `virsh resume {f.guest}`")
    elif f.active:
        tips += _running_tips(f)
    tips.append("the guest's logs on its disk often name the cause: a full filesystem (df), a wrong fstab entry "
                "(emergency mode), fsck errors, an OOM kill")
    return list(dict.fromkeys(tips))


def _running_tips(f: Findings) -> list[str]:
    if f.console and boot.login_prompt(f.console):
        return ["it shows a login prompt: the guest runs, so the problem is the network: check its bridge with "
                "`inventory`/`host-network`, its address (`image-tweak` with address=...) and the VLAN on the uplink"]
    if f.console == "":
        return ["its console is silent: the image may have no getty on ttyS0 (image-tweak console=True while it is "
                "shut off), or it hangs: destroy=True with apply and confirm, then read its disk"]
    return ["if the console shows a login prompt, the problem is the network (bridge, address, VLAN); if it shows "
            "nothing or an error, force it off (destroy=True with apply and confirm) and read its disk"]


def _signs(f: Findings) -> list[str]:
    texts = [f.console or "", f.serial_tail]
    if f.report is not None:
        texts += [text for _what, text in f.report.logs]
        texts.append(_full_filesystems(f.report.df))
    found = []
    for pattern, tip in SIGNS:
        if any(pattern.search(t) for t in texts):
            found.append(tip)
    return found


def _full_filesystems(df: str) -> str:
    """``No space left on device`` when df shows a filesystem at 100 % (so the sign matches)."""
    return "No space left on device" if re.search(r"\s100%\s", df + " ") else ""
