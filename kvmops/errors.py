"""The error types of kvmops. Every message says what was wrong and what to do."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


class KvmopsError(Exception):
    """Base of every error kvmops raises on purpose."""


class InvalidInput(KvmopsError, ValueError):
    """A name, size, VLAN, address or parameter is wrong. Nothing on the host was changed."""


class ConfigError(KvmopsError):
    """The site configuration file is wrong (the message names the file and the key)."""


class NotFound(KvmopsError):
    """A guest, LV, VG or bridge does not exist."""


class SafetyError(KvmopsError):
    """A guard refused a command the guide forbids (e.g. lvremove without an exact VG/LV)."""


class ConfirmationRequired(KvmopsError):
    """A destructive step needs ``confirm`` equal to its exact target."""


class LibvirtError(KvmopsError):
    """libvirt refused a call; the message says what to do."""


class CommandFailed(KvmopsError):
    """A command exited with a code it was not allowed to.

    The message names the host, the (masked) argv, the exit code and stderr, so that a
    notebook traceback tells the whole story on its last line.
    """

    def __init__(
        self, host: str, display_argv: Sequence[str], returncode: int, stderr: str, stdout: str = ""
    ) -> None:
        self.host = host
        self.argv = tuple(display_argv)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        super().__init__(self._message())

    def _message(self) -> str:
        detail = self.stderr.strip() or self.stdout.strip() or "(no output)"
        lines = without_traceback(detail.splitlines())
        if len(lines) > 15:
            lines = [*lines[:5], f"... {len(lines) - 10} lines ...", *lines[-5:]]
        shown = "\n    ".join(lines)
        return (
            f"on {self.host}: `{shlex.join(self.argv)}` exited {self.returncode}\n    {shown}"
        )


TRACEBACK = "Traceback (most recent call last):"


def without_traceback(lines: list[str]) -> list[str]:
    """A tool's own message without the Python traceback some tools print after it (borg does
    on an integrity error): the lines before it and the traceback's last line, the exception."""
    if TRACEBACK not in lines:
        return lines
    at = lines.index(TRACEBACK)
    after = [line for line in lines[at + 1:] if line and not line[0].isspace()]
    last = after[:1]  # the exception line ends the traceback; borg's environment report follows
    return [*lines[:at], *last, f"(a Python traceback of {len(lines) - at - 1} lines left out)"]


class CommandTimeout(CommandFailed):
    """A command ran longer than its timeout and was killed."""
