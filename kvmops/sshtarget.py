"""Where an SSH runner connects (pure): ``user@host``, a port, a key and a known_hosts file,
each checked before any ``ssh`` sees it.

A destination is ``[user@]host`` with host a DNS name, an IPv4 address or ``[IPv6]``: no
whitespace, control characters or shell characters (``;``, ``$``, backquotes, ...), never
starting with ``-`` (ssh would read an option). Paths are absolute (or ``~/``) and one line.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from kvmops.errors import InvalidInput

_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def check_destination(text: object) -> str:
    """``user@host`` (or ``host``) as ssh may be given it; InvalidInput says what is wrong."""
    if not isinstance(text, str) or not text:
        raise InvalidInput(f"bad SSH destination {text!r}: use user@host")
    user, at, host = text.rpartition("@")
    if (at and not _USER.match(user)) or not _host_ok(host):
        raise InvalidInput(f"bad SSH destination {text!r}: use user@host (a user name, then a DNS name, "
                           "an IPv4 address or an [IPv6] address; no spaces or shell characters)")
    return text


def _host_ok(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    return bool(_HOSTNAME.match(host))


def check_port(value: object) -> int | None:
    """An optional TCP port: an integer from 1 to 65535."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise InvalidInput(f"bad SSH port {value!r}: use 1-65535")
    return value


def check_path(value: object, what: str) -> str | None:
    """An optional file path of the SSH settings: absolute or ``~/``, one line."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("/", "~/")) or any(c in value for c in "\n\r\0"):
        raise InvalidInput(f"bad {what} {value!r}: give the absolute path (or ~/...) of a file")
    return value


@dataclass(frozen=True)
class SSHTarget:
    """Where to connect: ``root@build.example`` with an optional port, key and known_hosts."""

    destination: str
    port: int | None = None
    identity: str | None = None
    known_hosts: str | None = None

    def __post_init__(self) -> None:
        check_destination(self.destination)
        check_port(self.port)
        check_path(self.identity, "SSH identity file")
        check_path(self.known_hosts, "known_hosts file")

    @property
    def hostname(self) -> str:
        """The host part (``[::1]`` without brackets)."""
        return self.destination.rpartition("@")[2].strip("[]")
