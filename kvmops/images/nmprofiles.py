"""NetworkManager profiles inside an image: find the ones for an interface and change their
address settings in place, as the guide's ``nmcli con mod`` does (3.3.3). Pure, no I/O.

The guide's command sets ``connection.interface-name``, ``ipv4.method manual``,
``ipv4.addresses``, ``ipv4.gateway``, ``ipv4.dns`` and ``ipv4.may-fail no`` on the profile the
image already has (cloud-init's ``cloud-init-eth0.nmconnection`` on RHEL 9, Debian's ``Wired
connection 1``, an ``ifcfg-eth0``). Editing that profile instead of adding a second one
keeps one profile per interface: two would compete, and NetworkManager picks one by its own
rules (a DHCP profile with a higher autoconnect priority wins over a new static one).

A profile is *for* the interface when it names it (keyfile ``interface-name=``, ifcfg
``DEVICE=``), or when it is an ethernet profile bound to no interface name (it would apply
to eth0 as well: cloud-init binds by MAC address only); profiles bound to another interface
are left alone. Everything else in a profile (its id, uuid, MAC address, comments, IPv6)
stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

KEYFILE_DIR = "/etc/NetworkManager/system-connections"
IFCFG_DIR = "/etc/sysconfig/network-scripts"
ETHERNET = ("ethernet", "802-3-ethernet")
IGNORED = (".kvmops-new", "~", ".bak", ".orig", ".rej", ".swp", ".tmp", ".nmmeta", ".rpmnew", ".rpmsave",
           ".dpkg-old", ".dpkg-new", ".dpkg-dist")
_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")


@dataclass(frozen=True)
class Settings:
    """What ``nmcli con mod`` sets: interface, address with prefix, gateway, DNS servers."""

    device: str
    address: str  # 10.5.68.237/24
    gateway: str
    dns: tuple[str, ...]

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]

    @property
    def prefix(self) -> str:
        return self.address.split("/")[1]


@dataclass(frozen=True)
class Profile:
    """An existing profile in the image: its file, format (``keyfile``/``ifcfg``) and id."""

    path: str
    format: str
    name: str
    text: str


# ----------------------------------------------------------------- finding them
def candidates(listing: tuple[str, ...] | None, folder: str, fmt: str) -> list[str]:
    """The files of ``folder`` NetworkManager reads as profiles of format ``fmt``."""
    names = [n for n in listing or () if not n.startswith(".") and not n.endswith(IGNORED)]
    if fmt == "ifcfg":
        names = [n for n in names if n.startswith("ifcfg-") and n != "ifcfg-lo"]
    return [f"{folder}/{n}" for n in names]


def profiles_for(device: str, keyfiles: Mapping[str, str | None], ifcfgs: Mapping[str, str | None]) -> list[Profile]:
    """The profiles of ``device`` among the image's keyfiles and ifcfg files (path -> text)."""
    found = []
    for path, text in sorted(keyfiles.items()):
        if text is not None and _keyfile_applies(text, device):
            found.append(Profile(path, "keyfile", get_ini(text, "connection", "id") or path.rsplit("/", 1)[1], text))
    for path, text in sorted(ifcfgs.items()):
        if text is not None and _ifcfg_applies(text, path, device):
            found.append(Profile(path, "ifcfg", _ifcfg_get(text, "NAME") or path.rsplit("/", 1)[1], text))
    return found


def _keyfile_applies(text: str, device: str) -> bool:
    if (get_ini(text, "connection", "type") or "") not in ETHERNET:
        return False
    bound = get_ini(text, "connection", "interface-name")
    return bound in (None, "", device)


def _ifcfg_applies(text: str, path: str, device: str) -> bool:
    kind = (_ifcfg_get(text, "TYPE") or "Ethernet").lower()
    if kind != "ethernet":
        return False
    bound = _ifcfg_get(text, "DEVICE") or path.rsplit("/ifcfg-", 1)[-1]
    return bound == device or (not _ifcfg_get(text, "DEVICE") and bool(_ifcfg_get(text, "HWADDR")))


# ----------------------------------------------------------------- changing them
def edit(profile: Profile, s: Settings) -> str:
    """The profile's text with the static address set, everything else kept."""
    return edit_keyfile(profile.text, s) if profile.format == "keyfile" else edit_ifcfg(profile.text, s)


def edit_keyfile(text: str, s: Settings) -> str:
    """``nmcli con mod`` on a keyfile: ``interface-name``, ``[ipv4]`` method, address1 (with the
    gateway, as NetworkManager writes it), dns, may-fail; other ``addressN``/``gateway`` dropped."""
    text = set_ini(text, "connection", "interface-name", s.device)
    text = drop_ini(text, "ipv4", lambda k: (k.startswith("address") and k != "address1") or k == "gateway")
    for key, value in (("address1", f"{s.address},{s.gateway}"), ("dns", "".join(f"{d};" for d in s.dns)),
                       ("may-fail", "false"), ("method", "manual")):
        text = set_ini(text, "ipv4", key, value)
    return text


def edit_ifcfg(text: str, s: Settings) -> str:
    """``nmcli con mod`` on an ifcfg-rh profile: the static keys set, DHCP and old ones dropped."""
    wanted = {"DEVICE": s.device, "ONBOOT": "yes", "BOOTPROTO": "none", "IPADDR": s.ip, "PREFIX": s.prefix,
              "GATEWAY": s.gateway, **{f"DNS{i}": d for i, d in enumerate(s.dns, 1)},
              "DEFROUTE": "yes", "IPV4_FAILURE_FATAL": "yes"}
    stale = re.compile(r"^(NETMASK\d*|IPADDR\d+|PREFIX\d+|GATEWAY\d+|DNS\d+)$")
    out, done = [], set()
    for line in text.splitlines():
        key = _ifcfg_key(line)
        if key in wanted:
            if key not in done:
                out.append(f"{key}={wanted[key]}")
                done.add(key)
            continue
        if key and stale.match(key):
            continue
        out.append(line)
    out += [f"{k}={v}" for k, v in wanted.items() if k not in done]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------- ini lines (comments kept)
def get_ini(text: str, section: str, key: str) -> str | None:
    current = None
    for line in text.splitlines():
        m = _SECTION.match(line)
        if m:
            current = m.group("name").strip()
        elif current == section and _ini_key(line) == key:
            return line.split("=", 1)[1].strip()
    return None


def set_ini(text: str, section: str, key: str, value: str) -> str:
    """``key=value`` in ``[section]``: replaced where it is, else added at the end of the
    section (the section is added when missing)."""
    lines = text.splitlines()
    start, end = _section_span(lines, section)
    new = f"{key}={value}"
    if start is None:
        sep = [""] if lines and lines[-1].strip() else []
        return "\n".join([*lines, *sep, f"[{section}]", new]) + "\n"
    at = [i for i in range(start + 1, end) if _ini_key(lines[i]) == key]
    if at:  # the first one set, later duplicates dropped (the last one would win when read)
        lines[at[0]] = new
        return "\n".join(ln for i, ln in enumerate(lines) if i not in at[1:]) + "\n"
    last = end
    while last > start + 1 and not lines[last - 1].strip():
        last -= 1  # before the blank lines that end the section
    lines.insert(last, new)
    return "\n".join(lines) + "\n"


def drop_ini(text: str, section: str, which: Callable[[str], bool]) -> str:
    lines = text.splitlines()
    start, end = _section_span(lines, section)
    if start is None:
        return text
    kept = [ln for i, ln in enumerate(lines) if not (start < i < end and (k := _ini_key(ln)) and which(k))]
    return "\n".join(kept) + "\n"


def _section_span(lines: list[str], section: str) -> tuple[int | None, int]:
    start = None
    for i, line in enumerate(lines):
        m = _SECTION.match(line)
        if m and start is not None:
            return start, i
        if m and m.group("name").strip() == section:
            start = i
    return start, len(lines)


def _ini_key(line: str) -> str | None:
    stripped = line.strip()
    if not stripped or stripped[0] in "#;" or "=" not in stripped:
        return None
    return stripped.split("=", 1)[0].strip()


def _ifcfg_key(line: str) -> str | None:
    m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=", line)
    return m.group(1) if m else None


def _ifcfg_get(text: str, key: str) -> str | None:
    for line in text.splitlines():
        if _ifcfg_key(line) == key:
            return line.split("=", 1)[1].strip().strip("\"'")
    return None
