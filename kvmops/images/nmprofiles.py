"""NetworkManager profiles inside an image: which one binds which NIC, and their address
settings changed in place, as the guide's ``nmcli con mod`` does (3.3.3). Pure, no I/O.

A profile binds a NIC by its MAC (keyfile ``[ethernet] mac-address=``, ifcfg ``HWADDR=``:
cloud-init writes ``id=cloud-init enp1s0`` keyfiles bound by MAC only), by its name (keyfile
``interface-name=``, ifcfg ``DEVICE=`` or the file's name: Debian's saved ``Wired connection
1``, an image's ``ifcfg-eth0``), by both (NetworkManager then needs both to match), or by
nothing (it applies to any ethernet NIC). kvmops knows each NIC's MAC (it chose it) and the
names the guest will give it: ``eth<n>`` where the image's kernel line has ``net.ifnames=0``,
``enp<n+1>s0`` with predictable names (libvirt puts the NICs of a q35 guest on the first PCIe
root ports, bus 1, 2, ...), both when the image does not say (:func:`naming`).

For each NIC with a static address (:func:`assign`):

- the profile bound to its MAC is edited; else the one bound to one of its names; binding
  and everything else in it (id, uuid, comments, IPv6) stay as they are: a MAC-bound profile
  never gets an ``interface-name`` (that line would make it apply to no NIC when the guest
  names the NIC otherwise);
- else an unbound profile (the first, for the first NIC that has none) is bound to the NIC's
  MAC and edited;
- else a new keyfile bound to the MAC is written.

No two profiles are left competing for one NIC (NetworkManager would pick one by its own
rules: a DHCP profile with a higher autoconnect priority wins over a static one): every other
profile that would bind the NIC, and every unbound profile left over, gets ``autoconnect=false``
(ifcfg ``ONBOOT=no``). Profiles bound to another MAC or to a name no NIC with a static address
has (another NIC's, or none of this guest's) are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

KEYFILE_DIR = "/etc/NetworkManager/system-connections"
IFCFG_DIR = "/etc/sysconfig/network-scripts"
ETHERNET = ("ethernet", "802-3-ethernet")
IGNORED = (".kvmops-new", "~", ".bak", ".orig", ".rej", ".swp", ".tmp", ".nmmeta", ".rpmnew", ".rpmsave",
           ".dpkg-old", ".dpkg-new", ".dpkg-dist")
KERNEL, PREDICTABLE = "kernel names (net.ifnames=0)", "predictable names"
_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")


@dataclass(frozen=True)
class Settings:
    """What ``nmcli con mod`` sets on one NIC: address with prefix, the gateway (None: the
    default route is on another NIC), DNS servers (empty: set on another NIC); the NIC's MAC
    (None: unknown, then bound by ``device``, its name with kernel names) and index."""

    device: str
    address: str  # 10.5.68.237/24
    gateway: str | None
    dns: tuple[str, ...]
    mac: str | None = None
    nic: int = 0

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]

    @property
    def prefix(self) -> str:
        return self.address.split("/")[1]

    @property
    def what(self) -> str:
        return f"NIC {self.nic + 1} ({'MAC ' + self.mac if self.mac else self.device})"


@dataclass(frozen=True)
class Profile:
    """An existing profile in the image: its file, format (``keyfile``/``ifcfg``) and id."""

    path: str
    format: str
    name: str
    text: str

    @property
    def mac(self) -> str | None:
        """The MAC it is bound to (lower case), or None."""
        if self.format == "keyfile":
            found = get_ini(self.text, "ethernet", "mac-address") or get_ini(self.text, "802-3-ethernet",
                                                                            "mac-address")
        else:
            found = _ifcfg_get(self.text, "HWADDR")
        return found.strip().lower() if found else None

    @property
    def bound_name(self) -> str | None:
        """The interface name it is bound to, or None."""
        if self.format == "keyfile":
            return get_ini(self.text, "connection", "interface-name") or None
        return _ifcfg_get(self.text, "DEVICE") or (None if self.mac else self.path.rsplit("/ifcfg-", 1)[-1])

    @property
    def binding(self) -> str:
        """How it binds a NIC, for the plan: ``MAC 52:54:..``, ``name eth0``, both, or nothing."""
        parts = [f"MAC {self.mac}"] if self.mac else []
        parts += [f"name {self.bound_name}"] if self.bound_name else []
        return " and ".join(parts) or "no MAC and no name (any NIC)"


@dataclass(frozen=True)
class Assignment:
    """What happens for one NIC: the profile that gets its address (None: a new keyfile),
    whether that profile is bound to the NIC's MAC first (it was bound to nothing), and the
    profiles switched off because they would compete for the NIC."""

    nic: Settings
    profile: Profile | None
    bind: bool = False
    quiet: tuple[Profile, ...] = ()


# ----------------------------------------------------------------- finding them
def candidates(listing: tuple[str, ...] | None, folder: str, fmt: str) -> list[str]:
    """The files of ``folder`` NetworkManager reads as profiles of format ``fmt``."""
    names = [n for n in listing or () if not n.startswith(".") and not n.endswith(IGNORED)]
    if fmt == "ifcfg":
        names = [n for n in names if n.startswith("ifcfg-") and n != "ifcfg-lo"]
    return [f"{folder}/{n}" for n in names]


def ethernet_profiles(keyfiles: Mapping[str, str | None], ifcfgs: Mapping[str, str | None]) -> list[Profile]:
    """The image's ethernet profiles among its keyfiles and ifcfg files (path -> text)."""
    found = []
    for path, text in sorted(keyfiles.items()):
        if text is not None and (get_ini(text, "connection", "type") or "") in ETHERNET:
            found.append(Profile(path, "keyfile", get_ini(text, "connection", "id") or path.rsplit("/", 1)[1], text))
    for path, text in sorted(ifcfgs.items()):
        if text is not None and (_ifcfg_get(text, "TYPE") or "Ethernet").lower() == "ethernet":
            found.append(Profile(path, "ifcfg", _ifcfg_get(text, "NAME") or path.rsplit("/", 1)[1], text))
    return found


def naming(kernel_lines: Sequence[str | None]) -> str | None:
    """The image's interface naming from its kernel command line sources (``/etc/default/grub``,
    ``/etc/kernel/cmdline``): :data:`KERNEL` with ``net.ifnames=0``, :data:`PREDICTABLE` when
    one exists without it, None when there is none."""
    texts = [t for t in kernel_lines if t is not None]
    if any(re.search(r"(^|[\s\"'])net\.ifnames=0($|[\s\"'])", t, re.MULTILINE) for t in texts):
        return KERNEL
    return PREDICTABLE if texts else None


def nic_names(nic: int, scheme: str | None) -> frozenset[str]:
    """The names the guest gives NIC ``nic`` (see the module doc)."""
    kernel, predictable = f"eth{nic}", f"enp{nic + 1}s0"
    return frozenset({kernel} if scheme == KERNEL else {predictable} if scheme == PREDICTABLE
                     else {kernel, predictable})


def _binds(p: Profile, s: Settings, scheme: str | None) -> int:
    """How surely ``p`` binds NIC ``s``: 3 by its MAC, 2 by a name of it, 1 perhaps (a MAC-bound
    profile and the NIC's MAC unknown: the first NIC's), 0 not (or ``p`` binds nothing)."""
    mac, name = p.mac, p.bound_name
    if mac and s.mac:
        return 3 if mac == s.mac.lower() else 0
    if mac:
        return 1 if s.nic == 0 and (name is None or name in nic_names(0, scheme)) else 0
    return 2 if name is not None and name in nic_names(s.nic, scheme) else 0


def assign(nics: Sequence[Settings], profiles: Sequence[Profile], scheme: str | None) -> list[Assignment]:
    """For each NIC the profile to edit, bind or switch off (see the module doc)."""
    unbound = [p for p in profiles if not p.mac and not p.bound_name]
    out = []
    for s in nics:
        own = sorted((p for p in profiles if _binds(p, s, scheme)), key=lambda p: -_binds(p, s, scheme))
        bind = False
        if not own and unbound:
            own, bind = [unbound.pop(0)], True
        out.append(Assignment(s, own[0] if own else None, bind, tuple(own[1:])))
    if unbound and out:  # left over: each would compete for every NIC
        first = out[0]
        out[0] = Assignment(first.nic, first.profile, first.bind, (*first.quiet, *unbound))
    return out


# ----------------------------------------------------------------- changing them
def edit(profile: Profile, s: Settings, *, bind: bool = False) -> str:
    """The profile's text with the static address set (and bound to the NIC's MAC when
    ``bind``), everything else kept."""
    if profile.format == "keyfile":
        return edit_keyfile(profile.text, s, bind=bind)
    return edit_ifcfg(profile.text, s, bind=bind)


def quiet(profile: Profile) -> str:
    """The profile switched off: it stays, but NetworkManager no longer activates it by itself."""
    if profile.format == "keyfile":
        return set_ini(profile.text, "connection", "autoconnect", "false")
    return _set_ifcfg(profile.text, {"ONBOOT": "no"})


def edit_keyfile(text: str, s: Settings, *, bind: bool = False) -> str:
    """``nmcli con mod`` on a keyfile: ``[ipv4]`` method, address1 (with the gateway, as
    NetworkManager writes it, on the default route's NIC; else ``never-default``), dns where
    given, may-fail; other ``addressN``/``gateway`` dropped, and every default route the profile
    had as a route (``route1=0.0.0.0/0,GW``, as cloud-init writes it): the default route is the
    gateway on ``address1``, on one NIC only. The binding stays, unless ``bind`` (an unbound
    profile): then ``[ethernet] mac-address`` (or, MAC unknown, ``interface-name``)."""
    if bind and s.mac:
        text = set_ini(text, "ethernet", "mac-address", s.mac.upper())
    elif bind:
        text = set_ini(text, "connection", "interface-name", s.device)
    routes = default_route_keys(text)
    text = drop_ini(text, "ipv4", lambda k: (k.startswith("address") and k != "address1") or k == "gateway"
                    or (k == "dns" and not s.dns) or (k == "never-default" and s.gateway is not None)
                    or k in routes)
    address = f"{s.address},{s.gateway}" if s.gateway else s.address
    wanted = [("address1", address), *([("dns", "".join(f"{d};" for d in s.dns))] if s.dns else []),
              ("may-fail", "false"), ("method", "manual"), *([("never-default", "true")] if not s.gateway else [])]
    for key, value in wanted:
        text = set_ini(text, "ipv4", key, value)
    return text


def edit_ifcfg(text: str, s: Settings, *, bind: bool = False) -> str:
    """``nmcli con mod`` on an ifcfg-rh profile: the static keys set, DHCP and old ones dropped;
    ``GATEWAY`` only on the default route's NIC, ``DNSn`` where given; the binding stays unless
    ``bind`` (then ``HWADDR``, or, MAC unknown, ``DEVICE``). ``NM_CONTROLLED=no`` goes (upstream
    cloud-init's sysconfig renderer writes it): NetworkManager would leave the NIC unconfigured;
    initscripts read the same static keys."""
    wanted = {"ONBOOT": "yes", "BOOTPROTO": "none", "IPADDR": s.ip, "PREFIX": s.prefix,
              **({"GATEWAY": s.gateway} if s.gateway else {}), **{f"DNS{i}": d for i, d in enumerate(s.dns, 1)},
              "DEFROUTE": "yes" if s.gateway else "no", "IPV4_FAILURE_FATAL": "yes"}
    if bind:
        wanted = {("HWADDR" if s.mac else "DEVICE"): s.mac or s.device, **wanted}
    stale = re.compile(r"^(NETMASK\d*|IPADDR\d+|PREFIX\d+|GATEWAY\d*|DNS\d+|NM_CONTROLLED)$")
    return _set_ifcfg(text, wanted, stale)


def _set_ifcfg(text: str, wanted: Mapping[str, str], stale: re.Pattern[str] | None = None) -> str:
    out, done = [], set()
    for line in text.splitlines():
        key = _ifcfg_key(line)
        if key is not None and key in wanted:
            if key not in done:
                out.append(f"{key}={wanted[key]}")
                done.add(key)
            continue
        if key and stale is not None and stale.match(key):
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


_ROUTE_KEY = re.compile(r"^routes?\d+$")


def default_route_keys(text: str) -> frozenset[str]:
    """The ``[ipv4]`` keys of the keyfile's default routes (``routeN=0.0.0.0/0,...``), with
    their ``routeN_options``."""
    lines = text.splitlines()
    start, end = _section_span(lines, "ipv4")
    if start is None:
        return frozenset()
    keys: set[str] = set()
    for line in lines[start + 1:end]:
        key = _ini_key(line)
        m = _ROUTE_KEY.match(key or "")
        if key and m and line.split("=", 1)[1].strip().startswith("0.0.0.0/0"):
            keys |= {key, f"{key}_options"}
    return frozenset(keys)


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
