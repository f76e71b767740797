"""Reading the lab's serial log: its tail for error messages, boot phases for progress."""

from __future__ import annotations

from pathlib import Path

# (text on the serial console, the phase it means), in boot order.
PHASES = (
    ("Linux version", "kernel started"),
    ("Run /init as init process", "initramfs running"),
    ("Welcome to", "systemd started on the root filesystem"),
    ("Reached target", "systemd reaching its targets"),
    ("Secure Shell server", "sshd starting"),
    ("login:", "login prompt on the serial console"),
)
FATAL = ("Kernel panic", "end Kernel panic", "Gave up waiting for root", "ALERT!")


def tail(path: Path, lines: int = 25) -> str:
    """The last lines of the serial log (control characters dropped)."""
    try:
        data = path.read_bytes()[-65536:]
    except OSError:
        return "(no serial log)"
    text = data.decode(errors="replace").replace("\r", "")
    keep = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    cleaned = ["".join(c for c in ln if c.isprintable() or c == "\t") for ln in keep]
    return "\n".join("    " + ln for ln in cleaned) or "    (empty)"


def new_phases(text: str, seen: set[str]) -> list[str]:
    """Phases whose marker appears in ``text`` and were not reported yet (pure)."""
    out = []
    for marker, phase in PHASES:
        if phase not in seen and marker in text:
            seen.add(phase)
            out.append(phase)
    return out


def fatal(text: str) -> str | None:
    """The first fatal marker in the log (a panic, a missing root), if any."""
    return next((m for m in FATAL if m in text), None)
