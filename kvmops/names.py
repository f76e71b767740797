"""Validation of the names kvmops puts into commands: guests, LVs, VGs, bridges, snapshots.

Every check runs before a command is built, so a bad name never reaches the host.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from kvmops.errors import InvalidInput

MAX_LV_NAME = 64
MAX_IFNAME = 15
_LVM_NAME = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$")
_GUEST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_LETTER_FIRST = "is not allowed: start with a letter or digit, then use letters, digits, _ . -"
MAX_HOST_NAME = 253
SNAPSHOT_SUFFIX = re.compile(r"-(\d{8}T\d{4}Z)$")
# The name patterns are used with fullmatch: ``$`` alone also matches before a final newline.
# LVM reserves these name parts for its own sub-volumes.
_LVM_RESERVED = ("_cdata", "_cmeta", "_corig", "_mimage", "_mlog", "_pmspare", "_rimage",
                 "_rmeta", "_tdata", "_tmeta", "_vorigin", "_vdata")
_LVM_RESERVED_START = ("snapshot", "pvmove")


def _common(kind: str, name: str, limit: int) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{kind} name is empty: give a name such as 'test1'")
    if len(name) > limit:
        raise InvalidInput(f"{kind} name {name!r} is {len(name)} characters: at most {limit}")
    if name in (".", "..") or ".." in name:
        raise InvalidInput(f"{kind} name {name!r} contains '..': not allowed")
    if name.startswith("-"):
        raise InvalidInput(f"{kind} name {name!r} starts with '-': it would read as an option")


def _checked(kind: str, name: str, limit: int, pattern: re.Pattern[str], rule: str) -> str:
    """``name`` if it passes the checks of every name and matches ``pattern``; else InvalidInput
    ending in ``rule`` (what the pattern asks for)."""
    _common(kind, name, limit)
    if not pattern.fullmatch(name):
        raise InvalidInput(f"{kind} name {name!r} {rule}")
    return name


def lv_name(name: str, *, limit: int = MAX_LV_NAME) -> str:
    """An LV name LVM accepts: letters, digits, ``+ _ . -``; no leading dash; no '..'."""
    _checked("LV", name, limit, _LVM_NAME, "has characters LVM rejects: use letters, digits, + _ . -")
    if any(r in name for r in _LVM_RESERVED) or name.startswith(_LVM_RESERVED_START):
        raise InvalidInput(f"LV name {name!r} contains a part LVM reserves for itself")
    return name


def vg_name(name: str) -> str:
    """A VG name (same rules as an LV name)."""
    return _checked("VG", name, MAX_LV_NAME, _LVM_NAME, "has characters LVM rejects")


def guest_name(name: str) -> str:
    """A guest (libvirt domain) name that is also usable inside LV and file names."""
    return _checked("guest", name, 48, _GUEST, _LETTER_FIRST)


def host_name(name: str) -> str:
    """A site's or inventory host's name (``build.galaxyproject.eu``, ``kvm-1``): it names files
    and folders (a notebook session, a backup's origin), so no slash, no '..', no leading dot."""
    return _checked("host", name, MAX_HOST_NAME, _HOST, _LETTER_FIRST)


def ifname(name: str) -> str:
    """A Linux interface name: at most 15 characters, no slash or space."""
    return _checked("interface", name, MAX_IFNAME, _IFNAME, "has characters Linux rejects")


def snapshot_name(lv: str, when: datetime) -> str:
    """``<lv>-YYYYMMDDTHHMMZ`` in UTC, as the guide recommends (sec. 4.2.5)."""
    if when.tzinfo is None:
        raise InvalidInput("snapshot time must carry a time zone (use UTC)")
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%MZ")
    return lv_name(f"{lv}-{stamp}", limit=MAX_LV_NAME + 16)


def snapshot_time(name: str) -> datetime | None:
    """The UTC time embedded in a snapshot name, or None if it has none."""
    m = SNAPSHOT_SUFFIX.search(name)
    if not m:
        return None
    return datetime.strptime(m.group(1), "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
