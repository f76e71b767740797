"""Did the guest boot? Verification that cannot lie, from its serial console (pure).

A guest counts as booted only when its console shows a **login prompt** (``host login:``,
after the boot loader and kernel) or a boot marker that the image itself prints once its
init has run. Boot-loader lines (SYSLINUX, GRUB, ``Loading /boot/initrd.img...ok``) and
kernel messages prove only that the guest was started, never that it booted.

:func:`classify` says how far a console text got (the furthest stage it shows, and the line
that shows it); :func:`verdict` turns that into a :class:`BootVerdict` with a plain message:
``booted: login prompt after 38 s`` or ``NOT verified: no login prompt within 120 s; the
console's last lines were ...; this may be because ...``. :func:`wait_for_boot` reads a
console through a function given to it until a login prompt (or a fatal stage) or the
timeout, and gives the verdict; it does no I/O of its own, so a runbook can hand it a libvirt
console stream and a test a list of captured chunks.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Stages, in boot order; a later one overrides an earlier one (except the fatal ones, below).
NOTHING = "nothing"
BOOT_LOADER = "boot loader"
KERNEL = "kernel"
INITRAMFS = "initramfs"
USERSPACE = "userspace"
LOGIN = "login prompt"
MARKER = "boot marker"
# Fatal stages: the boot stopped there.
PANIC = "kernel panic"
ROOT_MISSING = "root filesystem not found"
EMERGENCY = "emergency mode"

ORDER = (NOTHING, BOOT_LOADER, KERNEL, INITRAMFS, USERSPACE)
FATAL = (PANIC, ROOT_MISSING, EMERGENCY)
BOOTED = (LOGIN, MARKER)

_ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")
# `kvmops-guest login: ` / `localhost login: root`; not `Last login: Mon ...`.
_LOGIN = re.compile(r"^(?!Last\b)[A-Za-z0-9][A-Za-z0-9._-]{0,62} login:(\s|$)")

# (stage, pattern): the first match of each stage's patterns is its evidence.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (stage, re.compile(rx)) for stage, rx in (
        (BOOT_LOADER, r"SYSLINUX \d|ISOLINUX \d|EXTLINUX \d|GNU GRUB|Welcome to GRUB|^Booting `|"
                      r"Loading Linux \S+ \.\.\.|Loading initial ramdisk|^Loading /\S+\.\.\. ?ok|"
                      r"Decompressing Linux|Booting the kernel|Booting from (Hard Disk|DVD|CD)|SeaBIOS \(version"),
        (KERNEL, r"Linux version \d+\.\d+|^\[\s*\d+\.\d+\] "),
        (INITRAMFS, r"Run /init as init process|^Loading, please wait\.\.\.|^Begin: Loading essential drivers|"
                    r"^tiny-initramfs: "),
        (USERSPACE, r"^Welcome to .+!$|systemd\[1\]: |^\[\s+OK\s+\] |Reached target|^Starting .+\.\.\.$"),
        (PANIC, r"Kernel panic - not syncing.*|end Kernel panic.*"),
        (ROOT_MISSING, r"Gave up waiting for root (file system )?device.*|ALERT!\s+.*does not exist.*|"
                       r"VFS: Unable to mount root fs.*"),
        (EMERGENCY, r"You are in emergency mode.*|Give root password for maintenance.*|"
                    r"Entering emergency mode.*|You are in rescue mode.*"),
    )
)

WHY: dict[str, str] = {
    NOTHING: ("the guest printed nothing on its serial console: it may not have been started, its "
              "firmware may be slow (nested emulation), or the domain has no serial console"),
    BOOT_LOADER: ("only the boot loader ran: the kernel did not start or prints nothing on ttyS0 (no "
                  "console=ttyS0 on its command line), or it is still loading a large kernel and "
                  "initrd (under nested emulation this takes minutes)"),
    KERNEL: ("the kernel started but did not reach its init: it may still be unpacking a large "
             "initrd (under emulation, minutes), or waiting for its disk driver"),
    INITRAMFS: ("the initramfs ran but the root filesystem was not mounted and started yet: a missing "
                "disk or filesystem module, or a slow boot"),
    USERSPACE: ("the system started but no login prompt appeared on ttyS0: no getty on the serial "
                "console (guide 3.3.2: serial-getty@ttyS0), or it is still starting services"),
    PANIC: "the kernel panicked",
    ROOT_MISSING: "the root filesystem was not found (wrong root= or UUID, or a missing disk driver)",
    EMERGENCY: "systemd stopped in emergency mode (a failed mount in fstab, or a broken root filesystem)",
}


def clean(text: str) -> str:
    """Console text without escape sequences, carriage returns and other control characters."""
    text = _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c.isprintable() or c in "\n\t")


@dataclass(frozen=True)
class ConsoleState:
    """How far a console text got: the stage and the line that shows it."""

    stage: str
    evidence: str = ""

    @property
    def booted(self) -> bool:
        return self.stage in BOOTED

    @property
    def fatal(self) -> bool:
        return self.stage in FATAL


def classify(text: str, markers: Sequence[str] = ()) -> ConsoleState:
    """The furthest stage ``text`` shows. A login prompt or a marker wins; a fatal stage seen
    after the boot loader wins over the ordinary ones (a boot that panicked did not boot)."""
    lines = [ln.strip() for ln in clean(text).split("\n")]
    for line in reversed(lines):
        if _LOGIN.match(line):
            return ConsoleState(LOGIN, line)
    for marker in markers:
        hit = next((ln for ln in lines if marker in ln), None)
        if hit is not None:
            return ConsoleState(MARKER, hit)
    fatal = _find(lines, FATAL, last=False)
    if fatal is not None:
        return fatal
    found = _find(lines, tuple(reversed(ORDER[1:])), last=True)
    return found or ConsoleState(NOTHING)


def _find(lines: list[str], stages: Sequence[str], *, last: bool) -> ConsoleState | None:
    """The first stage of ``stages`` (in that order) whose pattern matches some line; its
    evidence is the first matching line (a panic's cause) or the last (the latest progress)."""
    for stage in stages:
        rx = next(r for s, r in _PATTERNS if s == stage)
        hits = [line for line in lines if rx.search(line)]
        if hits:
            return ConsoleState(stage, hits[-1] if last else hits[0])
    return None


def last_lines(text: str, count: int = 5) -> tuple[str, ...]:
    """The last ``count`` non-empty lines of the console (cleaned, at most 160 characters each)."""
    kept = [ln.strip() for ln in clean(text).split("\n") if ln.strip()]
    return tuple(ln[:160] for ln in kept[-count:])


@dataclass(frozen=True)
class BootVerdict:
    """The outcome of waiting for a guest's boot.

    ``booted`` is True only for a login prompt (or the image's own marker). ``seconds`` is
    when it appeared (booted) or how long was waited (not booted).
    """

    booted: bool
    stage: str
    seconds: float
    evidence: str
    last: tuple[str, ...]

    @property
    def fatal(self) -> bool:
        return self.stage in FATAL

    @property
    def message(self) -> str:
        if self.booted:
            what = "login prompt" if self.stage == LOGIN else "the image's boot marker"
            return f"booted: {what} after {self.seconds:.0f} s ({self.evidence!r})"
        lines = "; ".join(repr(ln) for ln in self.last) or "(nothing)"
        why = WHY[self.stage] + (f" ({self.evidence!r})" if self.stage in FATAL else "")
        return (f"NOT verified: no login prompt within {self.seconds:.0f} s; the console got as far as "
                f"{self.stage}; its last lines were: {lines}; this may be because {why}")


def verdict(text: str, seconds: float, markers: Sequence[str] = ()) -> BootVerdict:
    """The verdict on what a console printed in ``seconds`` (booted or waited)."""
    state = classify(text, markers)
    return BootVerdict(state.booted, state.stage, seconds, state.evidence, last_lines(text))


Reader = Callable[[float], str]
"""Returns the console output that arrived within at most the given seconds ("" if none)."""


def wait_for_boot(read: Reader, timeout: float, *, markers: Sequence[str] = (), poll: float = 1.0,
                  clock: Callable[[], float] = time.monotonic, seen: str = "") -> tuple[BootVerdict, str]:
    """Read the console until a login prompt (or marker), a fatal stage, or ``timeout`` seconds.

    Returns the verdict and everything read (``seen`` first: what was read before).
    """
    t0 = clock()
    text = seen
    while True:
        state = classify(text, markers)
        waited = clock() - t0
        if state.booted or state.fatal or waited >= timeout:
            return BootVerdict(state.booted, state.stage, waited, state.evidence, last_lines(text)), text
        text += read(min(poll, max(timeout - waited, 0.0)))


def settled(state: ConsoleState) -> bool:
    """The console reached a verdict: booted, or a fatal stage."""
    return state.booted or state.fatal


def login_prompt(text: str) -> bool:
    """True once the console shows a login prompt (``host login:``): the guest has booted.
    Boot-loader lines and ``Last login:`` are not one."""
    return classify(text).stage == LOGIN
