"""Site configuration: one TOML file describes one KVM host.

The guide's host is the shipped default (``kvmops/sites/guide.toml``). Every error names the
file and the key: ``site.toml: network.vlan[2].cidr: '10.5.68.0/33' is not a network``.

Which file a site name means (:func:`resolve_site`, one resolution for the CLI's ``--site``
and ``--fleet``, the runbooks' ``site`` and a backup place's ``SITE:/dir``): ``""`` is
``$KVMOPS_SITE`` when set, else the default: for runbooks the shipped demo site (plan-only,
recorded facts), so that a runbook opened in Jupyter with its defaults is always safe; the
CLI passes its own default (the guide's host: the machine it runs on). A bare name such as
``demo`` or ``guide`` is a site shipped in ``kvmops/sites/``; anything else is a path.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from kvmops import names
from kvmops.errors import ConfigError, InvalidInput, NotFound
from kvmops.sshtarget import check_destination, check_path
from kvmops.units import parse_size

GATEWAY_HOST = 254  # "The default router is always on .254" (guide 3.3.3)

DHCP_YES, DHCP_NO, DHCP_UNKNOWN = "yes", "no", "unknown"
DHCP_STATES = (DHCP_YES, DHCP_NO)  # what a site file may say; absent = unknown

SEED_DIR = "/var/lib/libvirt/boot"
_KEYS: dict[str, set[str]] = {
    "": {"host", "storage", "libvirt", "images", "network", "recovery", "backup"},
    "host": {"name", "ssh", "ssh_port", "ssh_identity", "ssh_known_hosts", "recorded"},
    "storage": {"vg", "lv_prefix", "snapshot_size", "snapshot_extend_at", "snapshot_extend_by"},
    "libvirt": {"uri", "domain_type", "emulator", "xml_dir", "seed_dir", "boot_dir", "file_disk_dir"},
    "images": {"login_user"},
    "network": {"uplink", "dns", "vlan", "bridge_prefix"},
    "network.vlan": {"id", "cidr", "bridge", "gateway", "dhcp", "name"},
    "recovery": {"order", "boot_seconds"},
    "backup": {"signing_key", "allowed_signers"},
}
MAX_SITE_FILE = 1 << 20  # bytes of a site file read at most
SIGNING_KEY = "/etc/ssh/ssh_host_ed25519_key"  # the host's own SSH host key signs its backups' manifests
# libvirt transports kvmops drives: the host's own daemon, over SSH (strict host keys: the SSH
# runner's forward, or qemu+ssh with only these parameters), and the test driver (the demo).
_LIBVIRT_LOCAL = ("qemu:///system", "qemu:///session")
_QEMU_SSH = re.compile(r"qemu\+ssh://(?P<dest>[^/?#]+)/(?:system|session)(?:\?(?P<query>[^#]*))?")
_QEMU_SSH_PARAMS = {"keyfile", "known_hosts", "no_tty"}
_QEMU_SSH_VALUE = re.compile(r"[01]|/[A-Za-z0-9_./@+-]+")  # no_tty=1, keyfile=/root/.ssh/id


@dataclass(frozen=True)
class Network:
    """A guest network: VLAN id, its bridge ``virbr1.<id>``, CIDR and ``.254`` gateway.

    ``dhcp``: whether a DHCP service answers on it: ``"yes"``, ``"no"``, or ``"unknown"`` when
    the site file does not say (the guide says only that *some* networks have DHCP).
    """

    vlan: int
    bridge: str
    cidr: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    dhcp: str = DHCP_UNKNOWN
    name: str = ""

    @property
    def dhcp_text(self) -> str:
        """The DHCP status for a person: ``yes``, ``no``, or ``unknown (the guide does not say)``."""
        return self.dhcp if self.dhcp in DHCP_STATES else "unknown (the guide does not say)"


@dataclass(frozen=True)
class Site:
    """Everything kvmops needs to know about one host."""

    path: str
    name: str
    ssh: str
    ssh_port: int | None
    ssh_identity: str | None
    ssh_known_hosts: str | None
    vg: str
    lv_prefix: str
    snapshot_size: int
    snapshot_extend_at: float
    snapshot_extend_by: int
    libvirt_uri: str
    domain_type: str
    emulator: str
    xml_dir: str
    login_user: str
    uplink: str
    dns: tuple[ipaddress.IPv4Address, ...]
    networks: tuple[Network, ...]
    recorded: str = ""  # the recorded-facts file of a plan-only site such as the demo (kvmops.runners.recorded)
    recovery_order: tuple[str, ...] = ()  # guests to start first after an outage, in this order
    recovery_boot_seconds: float = 300.0  # how long each may take to show a login prompt
    # where NoCloud seed ISOs live: QEMU (user qemu / libvirt-qemu) must reach them, which it
    # cannot under /root (mode 0550/0700); virt-install keeps its boot media here too
    seed_dir: str = SEED_DIR
    # where a definition may take kernels, initrds and serial log files from (the XML policy,
    # kvmops.safety.xmlpolicy); by default the seed folder
    boot_dir: str = SEED_DIR
    # file-backed guest disks are allowed only in this folder; "" (the default): none, guest
    # disks are LVs of the VG (a test host without device-mapper names one)
    file_disk_dir: str = ""
    # [backup]: the key (a path on the host) that signs the manifests of its backups, and the
    # allowed signers file (here, where kvmops runs) a restore checks a manifest's signature
    # against; "": none named, so no backup verifies (kvmops.transfer.signing)
    signing_key: str = SIGNING_KEY
    allowed_signers: str = ""

    def network(self, vlan: int) -> Network:
        """The network of a VLAN id; NotFound names the VLANs the site has."""
        for n in self.networks:
            if n.vlan == vlan:
                return n
        known = ", ".join(str(n.vlan) for n in self.networks) or "none"
        raise NotFound(f"VLAN {vlan} is not a network of site {self.name} (known: {known})")

    def network_by_bridge(self, bridge: str) -> Network:
        for n in self.networks:
            if n.bridge == bridge:
                return n
        known = ", ".join(n.bridge for n in self.networks) or "none"
        raise NotFound(f"bridge {bridge!r} is not a network of site {self.name} (known: {known})")

    def guest_lv(self, guest: str) -> str:
        """The system-disk LV of a guest: ``vm`` + ``test1`` -> ``vmtest1``."""
        return names.lv_name(self.lv_prefix + names.guest_name(guest))

    def is_guest_lv(self, lv: str) -> bool:
        """True for LVs that follow the guest naming convention (never host LVs)."""
        return lv.startswith(self.lv_prefix) and len(lv) > len(self.lv_prefix)

    @property
    def remote(self) -> bool:
        return bool(self.ssh)

    @property
    def replay(self) -> str:
        """The former name of :attr:`recorded` (some runbooks still ask it): truthy on a
        recorded, plan-only site."""
        return self.recorded


def default_site_path() -> Path:
    return Path(str(resources.files("kvmops") / "sites" / "guide.toml"))


def load_site(path: str | Path | None = None) -> Site:
    """Read and validate a site file (the guide's host when ``path`` is None)."""
    p = Path(path) if path else default_site_path()
    return site_from_data(read_site_data(p), str(p))


def read_site_data(path: Path) -> dict[str, Any]:
    """A site file's TOML, not yet validated."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SITE_FILE + 1)
        if len(raw) > MAX_SITE_FILE:
            raise ConfigError(f"{path}: larger than {MAX_SITE_FILE} bytes: not a site file")
        return tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"site file {path} does not exist: give --site PATH to a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except IsADirectoryError:
        raise ConfigError(f"site file {path} is a folder: give the path of a site TOML file") from None
    except OSError as exc:
        raise ConfigError(f"site file {path}: {exc.strerror}") from None


def site_from_data(data: dict[str, Any], where: str) -> Site:
    """Validate site data (a site file's TOML, or values from elsewhere such as an Ansible
    inventory); every error names ``where`` and the key."""
    return _Reader(where).site(data)


class _Reader:
    """Turns the parsed TOML into a Site, naming file and key in every error."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {why}")

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        section = data.get(key.split(".")[-1], {})
        if not isinstance(section, dict):
            raise self.fail(key, "must be a table")
        unknown = set(section) - _KEYS[key]
        if unknown:
            allowed = ", ".join(sorted(_KEYS[key]))
            raise self.fail(key, f"unknown key(s) {', '.join(sorted(unknown))} (allowed: {allowed})")
        return section

    def get(self, table: dict[str, Any], key: str, typ: type, full: str, default: Any = None) -> Any:
        if key not in table:
            if default is None:
                raise self.fail(full, "is missing")
            return default
        value = table[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise self.fail(full, f"must be {typ.__name__}, got {value!r}")
        return value

    def checked(self, full: str, fn: Any, value: Any) -> Any:
        try:
            return fn(value)
        except InvalidInput as exc:
            raise self.fail(full, str(exc)) from None

    def site(self, data: dict[str, Any]) -> Site:
        unknown = set(data) - _KEYS[""]
        if unknown:
            raise self.fail(", ".join(sorted(unknown)), "unknown section(s)")
        host = self.table(data, "host")
        st = self.table(data, "storage")
        lv = self.table(data, "libvirt")
        img = self.table(data, "images")
        net = self.table(data, "network")
        port = host.get("ssh_port")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            raise self.fail("host.ssh_port", f"must be 1-65535, got {port!r}")
        backup = self.table(data, "backup")
        extend_at = self.get(st, "snapshot_extend_at", int, "storage.snapshot_extend_at", 80)
        if not 0 < extend_at < 100:
            raise self.fail("storage.snapshot_extend_at", "must be a percentage 1-99")
        prefix = self.get(st, "lv_prefix", str, "storage.lv_prefix")
        if not prefix:
            raise self.fail("storage.lv_prefix", "must not be empty: it keeps host LVs apart")
        self.checked("storage.lv_prefix", names.lv_name, prefix)
        domain_type = self.get(lv, "domain_type", str, "libvirt.domain_type", "kvm")
        if domain_type not in ("kvm", "qemu"):
            raise self.fail("libvirt.domain_type", f"must be kvm or qemu, got {domain_type!r}")
        return Site(
            path=self.path,
            name=self.checked("host.name", names.host_name, self.get(host, "name", str, "host.name")),
            ssh=self.ssh(host),
            ssh_port=port,
            ssh_identity=self.ssh_file(host, "ssh_identity", "SSH identity file"),
            ssh_known_hosts=self.ssh_file(host, "ssh_known_hosts", "known_hosts file"),
            vg=self.checked("storage.vg", names.vg_name, self.get(st, "vg", str, "storage.vg")),
            lv_prefix=prefix,
            snapshot_size=self.size(st, "snapshot_size", "5g"),
            snapshot_extend_at=float(extend_at),
            snapshot_extend_by=self.size(st, "snapshot_extend_by", "2g"),
            libvirt_uri=self.libvirt_uri(lv),
            domain_type=domain_type,
            emulator=self.get(lv, "emulator", str, "libvirt.emulator", "/usr/libexec/qemu-kvm"),
            xml_dir=self.folder(lv, "xml_dir", "/root/kvm"),
            seed_dir=self.folder(lv, "seed_dir", SEED_DIR),
            boot_dir=self.folder(lv, "boot_dir", self.folder(lv, "seed_dir", SEED_DIR)),
            file_disk_dir=self.folder(lv, "file_disk_dir", ""),
            login_user=self.get(img, "login_user", str, "images.login_user", "centos"),
            uplink=self.uplink(net),
            dns=self.dns(net),
            networks=self.networks(net),
            recorded=self.recorded(host),
            **self.recovery(self.table(data, "recovery")),
            signing_key=self.host_file(backup, "signing_key", SIGNING_KEY),
            allowed_signers=self.local_file(backup, "allowed_signers"),
        )

    def ssh(self, host: dict[str, Any]) -> str:
        dest = self.get(host, "ssh", str, "host.ssh", "")
        return self.checked("host.ssh", check_destination, dest) if dest else ""

    def ssh_file(self, host: dict[str, Any], key: str, what: str) -> str | None:
        """``ssh_identity``/``ssh_known_hosts``: an absolute (or ~/) path of this machine."""
        if key not in host:
            return None
        value: str = self.get(host, key, str, f"host.{key}")
        return str(self.checked(f"host.{key}", lambda v: check_path(v, what), self.site_relative(value)))

    def libvirt_uri(self, lv: dict[str, Any]) -> str:
        """Only the transports kvmops drives (see :data:`_LIBVIRT_LOCAL`); never one that runs a
        command (qemu+ext), skips host keys (no_verify) or goes elsewhere (tcp, a socket)."""
        uri = self.site_relative(self.get(lv, "uri", str, "libvirt.uri", "qemu:///system"))
        ssh = _QEMU_SSH.fullmatch(uri)
        if uri in _LIBVIRT_LOCAL or uri.startswith("test://"):
            return uri
        if ssh is not None:
            dest = ssh.group("dest")
            head, sep, port = dest.rpartition(":")
            self.checked("libvirt.uri", check_destination, head if sep and port.isdigit() else dest)
            params = [p.partition("=") for p in (ssh.group("query") or "").split("&") if p]
            if all(k in _QEMU_SSH_PARAMS and _QEMU_SSH_VALUE.fullmatch(v) for k, _, v in params):
                return uri
        raise self.fail("libvirt.uri", f"{uri[:120]!r} is not a libvirt connection kvmops uses: give qemu:///system "
                        "(this host; a site with host.ssh reaches it over SSH) or qemu+ssh://user@host/system "
                        f"(parameters: {', '.join(sorted(_QEMU_SSH_PARAMS))})")

    def uplink(self, net: dict[str, Any]) -> str:
        name: str = self.checked("network.uplink", names.ifname, self.get(net, "uplink", str, "network.uplink"))
        if name == "lo" or name.startswith("lo."):
            raise self.fail("network.uplink", "lo is the loopback interface: name the host's uplink to the "
                            "switch (e.g. eno2)")
        return name

    def host_file(self, table: dict[str, Any], key: str, default: str) -> str:
        """A file on the host (the signing key): absolute, one line, no '..'."""
        value: str = self.get(table, key, str, f"backup.{key}", default)
        if not value.startswith("/") or any(c in value for c in "\0\n\r") or ".." in value.split("/"):
            raise self.fail(f"backup.{key}", f"must be an absolute path on the host, got {value!r}")
        return value

    def local_file(self, table: dict[str, Any], key: str) -> str:
        """A file where kvmops runs (``{site_dir}`` allowed), checked when it is used; "" when unset."""
        value = self.site_relative(self.get(table, key, str, f"backup.{key}", ""))
        if value and (not value.startswith("/") or any(c in value for c in "\0\n\r") or ".." in value.split("/")):
            raise self.fail(f"backup.{key}", f"must be an absolute path (or {{site_dir}}/...), got {value!r}")
        return value

    def recovery(self, rec: dict[str, Any]) -> dict[str, Any]:
        """``[recovery] order = ["dns1", "db1"]``, ``boot_seconds = 300``."""
        order = rec.get("order", [])
        if not isinstance(order, list) or not all(isinstance(n, str) for n in order):
            raise self.fail("recovery.order", "must be a list of guest names, e.g. [\"dns1\", \"db1\"]")
        for i, n in enumerate(order):
            self.checked(f"recovery.order[{i}]", names.guest_name, n)
        if len(set(order)) != len(order):
            raise self.fail("recovery.order", "names a guest twice")
        seconds = rec.get("boot_seconds", 300)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 10 <= seconds <= 3600:
            raise self.fail("recovery.boot_seconds", f"must be seconds from 10 to 3600, got {seconds!r}")
        return {"recovery_order": tuple(order), "recovery_boot_seconds": float(seconds)}

    def folder(self, table: dict[str, Any], key: str, default: str) -> str:
        """An absolute folder on the host (``{site_dir}`` allowed), normalised; "" only as a default."""
        value = self.site_relative(self.get(table, key, str, f"libvirt.{key}", default))
        if value == default == "":
            return ""
        if not value.startswith("/") or any(c in value for c in "\0\n\r") or ".." in value.split("/"):
            raise self.fail(f"libvirt.{key}", f"must be an absolute folder without '..', got {value!r}")
        return os.path.normpath(value)

    def site_relative(self, text: str) -> str:
        """``{site_dir}`` in a value becomes the absolute folder of the site file."""
        return text.replace("{site_dir}", str(Path(self.path).resolve().parent))

    def recorded(self, host: dict[str, Any]) -> str:
        """``[host] recorded = "demo/facts.toml"``: the host as recorded facts (plan-only), a file
        relative to the site file (:mod:`kvmops.runners.recorded`)."""
        value = self.get(host, "recorded", str, "host.recorded", "")
        if not value:
            return ""
        path = Path(self.path).resolve().parent / value
        if not path.is_file():
            raise self.fail("host.recorded", f"{path} is not a file of recorded facts")
        if host.get("ssh"):
            raise self.fail("host.recorded", "a recorded site has no SSH destination: remove one of them")
        return str(path)

    def size(self, table: dict[str, Any], key: str, default: str) -> int:
        value = table.get(key, default)
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise self.fail(f"storage.{key}", f"must be a size such as '5g', got {value!r}")
        return int(self.checked(f"storage.{key}", parse_size, value))

    def dns(self, net: dict[str, Any]) -> tuple[ipaddress.IPv4Address, ...]:
        servers = net.get("dns", [])
        if not isinstance(servers, list):
            raise self.fail("network.dns", "must be a list of IPv4 addresses")
        out = []
        for i, s in enumerate(servers):
            try:
                out.append(ipaddress.IPv4Address(s))
            except (ipaddress.AddressValueError, ValueError):
                raise self.fail(f"network.dns[{i}]", f"{s!r} is not an IPv4 address") from None
        return tuple(out)

    def networks(self, net: dict[str, Any]) -> tuple[Network, ...]:
        vlans = net.get("vlan", [])
        if not isinstance(vlans, list):
            raise self.fail("network.vlan", "must be an array of tables ([[network.vlan]])")
        prefix = net.get("bridge_prefix", "virbr1.")
        out: list[Network] = []
        for i, entry in enumerate(vlans):
            n = self.network(entry, f"network.vlan[{i}]", prefix)
            for other in out:
                if other.vlan == n.vlan:
                    raise self.fail(f"network.vlan[{i}].id", f"VLAN {n.vlan} is listed twice")
                if other.bridge == n.bridge:
                    raise self.fail(f"network.vlan[{i}].bridge", f"{n.bridge} is listed twice")
                if other.cidr.overlaps(n.cidr):
                    raise self.fail(
                        f"network.vlan[{i}].cidr", f"{n.cidr} overlaps VLAN {other.vlan}'s {other.cidr}"
                    )
            out.append(n)
        return tuple(out)

    def network(self, entry: Any, key: str, prefix: str) -> Network:
        if not isinstance(entry, dict):
            raise self.fail(key, "must be a table")
        unknown = set(entry) - _KEYS["network.vlan"]
        if unknown:
            raise self.fail(key, f"unknown key(s) {', '.join(sorted(unknown))}")
        vlan = self.get(entry, "id", int, f"{key}.id")
        if not 1 <= vlan <= 4094:
            raise self.fail(f"{key}.id", f"VLAN {vlan} is outside 1-4094")
        raw = self.get(entry, "cidr", str, f"{key}.cidr")
        try:
            cidr = ipaddress.IPv4Network(raw, strict=True)
        except ValueError as exc:
            raise self.fail(f"{key}.cidr", f"{raw!r} is not a network: {exc}") from None
        bridge = entry.get("bridge", f"{prefix}{vlan}")
        self.checked(f"{key}.bridge", names.ifname, bridge)
        gateway = self.gateway(entry, key, cidr)
        return Network(vlan, bridge, cidr, gateway, self.dhcp(entry, key), str(entry.get("name", "")))

    def dhcp(self, entry: dict[str, Any], key: str) -> str:
        """``dhcp = "yes"`` or ``"no"``; left out when nobody knows (then kvmops reminds of
        DHCP reservations for static addresses, as for "yes")."""
        if "dhcp" not in entry:
            return DHCP_UNKNOWN
        value = entry["dhcp"]
        if value not in DHCP_STATES or isinstance(value, bool):
            raise self.fail(f"{key}.dhcp", f'must be "yes" or "no" (leave it out when unknown), got {value!r}')
        return str(value)

    def gateway(self, entry: dict[str, Any], key: str, cidr: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
        if "gateway" in entry:
            try:
                gw = ipaddress.IPv4Address(entry["gateway"])
            except (ipaddress.AddressValueError, ValueError):
                raise self.fail(f"{key}.gateway", f"{entry['gateway']!r} is not an IPv4 address") from None
        else:
            try:
                gw = default_gateway(cidr)
            except InvalidInput as exc:
                raise self.fail(f"{key}.gateway", f"{exc}: name the router (gateway = \"...\")") from None
        if gw not in cidr or gw in (cidr.network_address, cidr.broadcast_address):
            raise self.fail(f"{key}.gateway", f"{gw} is not a host address inside {cidr}")
        return gw


def default_gateway(cidr: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """The guide's rule, "the default router is always on .254": the host address of ``cidr``
    whose last octet is 254, at its top (``10.5.68.0/23`` -> ``10.5.69.254``, ``10.5.0.0/16``
    -> ``10.5.255.254``, ``203.0.113.128/25`` -> ``203.0.113.254``).

    A network without such a host address (``203.0.113.0/25`` ends at .127; a /26 or smaller
    below .192) has no default router by the rule: refused, the site must name it.
    """
    gw = ipaddress.IPv4Address((int(cidr.broadcast_address) & ~0xFF) | GATEWAY_HOST)
    if gw not in cidr or gw in (cidr.network_address, cidr.broadcast_address):
        raise InvalidInput(f"{cidr} has no .{GATEWAY_HOST} host address, so the rule \"the default router "
                           f"is always on .{GATEWAY_HOST}\" gives none")
    return gw


def gateway_for(site: Site, address: str) -> ipaddress.IPv4Address:
    """The default router of a guest address (``10.5.68.237`` or ``10.5.68.237/24``): the
    gateway of the site network it lies in (the site file may name one), else the ``.254``
    rule applied to the address's own network (which needs a prefix).

    The one place that derives a gateway; a network without one by the rule is refused.
    """
    text = str(address).strip()
    try:
        iface = ipaddress.IPv4Interface(text)
    except ValueError:
        raise InvalidInput(f"{address!r} is not an IPv4 address such as 10.5.68.237/24") from None
    for net in site.networks:
        if iface.ip in net.cidr:
            if "/" in text and iface.network != net.cidr:
                raise InvalidInput(f"{text} is in VLAN {net.vlan}'s network {net.cidr}, but its prefix says "
                                   f"{iface.network}: use /{net.cidr.prefixlen} or leave the prefix out")
            return net.gateway
    if "/" not in text:
        raise InvalidInput(f"{text} is in none of site {site.name}'s networks: give it with its prefix "
                           "(e.g. /24) or name the router (--gateway)")
    try:
        return default_gateway(iface.network)
    except InvalidInput as exc:
        raise InvalidInput(f"{text}: {exc}: give the router (--gateway)") from None


# -- which site file a name means -------------------------------------------------------------

SITE_ENV = "KVMOPS_SITE"
DEFAULT_SITE = "demo"


def shipped_sites() -> dict[str, Path]:
    """The site files shipped with kvmops, by name: ``{"demo": ..., "guide": ...}``."""
    folder = Path(str(resources.files("kvmops") / "sites"))
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def resolve_site(site: str | os.PathLike[str] | None, default: str = DEFAULT_SITE) -> Path:
    """The site file for a ``site`` parameter (see the module doc)."""
    text = str(site or os.environ.get(SITE_ENV, "") or default)
    shipped = shipped_sites()
    if "/" not in text and not text.endswith(".toml"):
        if text not in shipped:
            raise ConfigError(
                f"no shipped site called {text!r} (shipped: {', '.join(shipped)}); "
                "give the path of a site TOML file instead"
            )
        return shipped[text]
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(f"site file {path} does not exist: give a path to a site TOML file")
    return path.resolve()
