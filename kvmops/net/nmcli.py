"""NetworkManager facts: the ``nmcli -t`` commands kvmops reads and their pure parsers.

Terse output (``-t``) separates fields with ``:``; with ``-e yes`` a ``:`` or ``\\`` inside a
value of a table (``connection show``, ``device``) is escaped with a backslash, while the
``setting.property:value`` lines of one profile print the value raw (measured on NM 1.42).
Properties a profile does not have (``vlan.id`` of a bridge) are simply not printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kvmops.cmd import Cmd, read
from kvmops.errors import KvmopsError

NMCLI = ("nmcli", "-t", "-e", "yes")
LIST_FIELDS = "NAME,UUID,TYPE,DEVICE"
DEVICE_FIELDS = "DEVICE,TYPE,STATE,CONNECTION"
DETAIL_FIELDS = (
    "connection.id,connection.uuid,connection.type,connection.interface-name,"
    "connection.master,connection.slave-type,bridge.stp,bridge.ageing-time,"
    "ipv4.method,ipv6.method,vlan.id,vlan.parent"
)
_ADDED = re.compile(r"^Connection '(?P<name>.*)' \((?P<uuid>[^)]*)\) successfully added\.$", re.M)


class NmcliError(KvmopsError):
    """nmcli printed something kvmops cannot read, or NetworkManager is not reachable."""


@dataclass(frozen=True)
class ProfileRef:
    """One line of ``nmcli -t -f NAME,UUID,TYPE,DEVICE connection show``."""

    name: str
    uuid: str
    type: str
    device: str  # the interface it is active on; "" when inactive


@dataclass(frozen=True)
class Profile:
    """The settings kvmops cares about of one bridge or VLAN profile."""

    id: str
    uuid: str
    type: str
    interface_name: str
    master: str = ""  # the bridge's profile id, UUID or interface name ("" if none)
    slave_type: str = ""
    stp: bool | None = None
    ageing_time: int | None = None  # seconds, as nmcli shows bridge.ageing-time
    ipv4_method: str = ""
    ipv6_method: str = ""
    vlan_id: int | None = None
    vlan_parent: str = ""
    device: str = ""  # filled from the profile list: where it is active


@dataclass(frozen=True)
class Device:
    """One line of ``nmcli -t -f DEVICE,TYPE,STATE,CONNECTION device``."""

    name: str
    type: str
    state: str
    connection: str

    @property
    def managed(self) -> bool:
        return self.state != "unmanaged"


def list_cmd() -> Cmd:
    """``nmcli -t -e yes -f NAME,UUID,TYPE,DEVICE connection show``"""
    return read(*NMCLI, "-f", LIST_FIELDS, "connection", "show")


def devices_cmd() -> Cmd:
    """``nmcli -t -e yes -f DEVICE,TYPE,STATE,CONNECTION device``"""
    return read(*NMCLI, "-f", DEVICE_FIELDS, "device")


def details_cmd(uuids: tuple[str, ...]) -> Cmd:
    """``nmcli -t -e yes -f connection.id,... connection show uuid U1 uuid U2 ...``"""
    if not uuids:
        raise ValueError("details_cmd needs at least one UUID")
    args = [a for u in uuids for a in ("uuid", u)]
    return read(*NMCLI, "-f", DETAIL_FIELDS, "connection", "show", *args)


def split_terse(line: str) -> list[str]:
    """Split one terse line at unescaped ``:`` and undo the ``\\:``/``\\\\`` escapes."""
    fields: list[str] = []
    cur: list[str] = []
    chars = iter(line)
    for ch in chars:
        if ch == "\\":
            cur.append(next(chars, "\\"))
        elif ch == ":":
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    fields.append("".join(cur))
    return fields


def _fields(line: str, n: int, what: str) -> list[str]:
    parts = split_terse(line)
    if len(parts) != n:
        raise NmcliError(f"cannot read nmcli {what} line {line!r}: expected {n} fields, got {len(parts)}")
    return parts


def parse_list(text: str) -> tuple[ProfileRef, ...]:
    """Parse ``nmcli -t -f NAME,UUID,TYPE,DEVICE connection show``."""
    return tuple(ProfileRef(*_fields(ln, 4, "connection")) for ln in text.splitlines() if ln.strip())


def parse_devices(text: str) -> tuple[Device, ...]:
    """Parse ``nmcli -t -f DEVICE,TYPE,STATE,CONNECTION device``."""
    return tuple(Device(*_fields(ln, 4, "device")) for ln in text.splitlines() if ln.strip())


def parse_details(text: str) -> tuple[Profile, ...]:
    """Parse ``nmcli -t -f <DETAIL_FIELDS> connection show uuid ...`` (blank line between)."""
    out: list[Profile] = []
    props: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if props:
                out.append(_profile(props))
                props = {}
            continue
        key, sep, value = line.partition(":")
        if not sep or "." not in key:
            raise NmcliError(f"cannot read nmcli property line {line!r}: expected setting.property:value")
        props[key] = value  # detail values are printed raw, not escaped (NM 1.42)
    return tuple(out)


def _profile(p: dict[str, str]) -> Profile:
    if "connection.id" not in p or "connection.uuid" not in p:
        raise NmcliError(f"nmcli profile block without connection.id/uuid: {sorted(p)}")
    return Profile(
        id=p["connection.id"],
        uuid=p["connection.uuid"],
        type=p.get("connection.type", ""),
        interface_name=p.get("connection.interface-name", ""),
        master=p.get("connection.master", ""),
        slave_type=p.get("connection.slave-type", ""),
        stp=_yes_no(p.get("bridge.stp")),
        ageing_time=_int(p.get("bridge.ageing-time")),
        ipv4_method=p.get("ipv4.method", ""),
        ipv6_method=p.get("ipv6.method", ""),
        vlan_id=_int(p.get("vlan.id")),
        vlan_parent=p.get("vlan.parent", ""),
    )


def _yes_no(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    if value not in ("yes", "no"):
        raise NmcliError(f"expected yes or no from nmcli, got {value!r}")
    return value == "yes"


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise NmcliError(f"expected a number from nmcli, got {value!r}") from None


def parse_added(text: str) -> tuple[str, str]:
    """``Connection 'NAME' (UUID) successfully added.`` -> (NAME, UUID)."""
    m = _ADDED.search(text)
    if not m:
        raise NmcliError(f"nmcli did not report an added connection: {text.strip()!r}")
    return m.group("name"), m.group("uuid")


def explain(stderr: str) -> str | None:
    """A hint for nmcli errors seen on real hosts, or None."""
    if "Could not create NMClient object" in stderr or "NetworkManager is not running" in stderr:
        return "NetworkManager is not running (or not reachable over D-Bus) on this host"
    if "invalid <setting>.<property> 'controller'" in stderr or "'port-type'" in stderr:
        return ("this NetworkManager predates 1.46: use 'master'/'slave-type', not "
                "'controller'/'port-type'")
    return None
