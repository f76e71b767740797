"""The cloud-init way (beyond the guide): a NoCloud seed ISO as the guest's CD-ROM.

A stock cloud image finds a filesystem labelled ``cidata`` holding ``user-data`` (users,
keys, hashed passwords, sudo), ``meta-data`` (instance-id, hostname) and ``network-config``
(v2: the static addresses, each NIC matched by its MAC) and configures itself: no metadata service, no offline edits.

The ISO is written with **pycdlib** (pure Python, already a dependency): it needs no tool on
the KVM host, runs in milliseconds, works the same in unit tests, and the result is read
back with the same library (this kernel cannot even mount iso9660). genisoimage would need
the three files on the host first and one more package there. The bytes go to the host as
base64 on stdin of ``openssl base64 -d -A -out PATH`` (masked: user-data holds password
hashes), so the same code works locally and over SSH. The file is created empty with mode
0600 first (``install -m 0600 /dev/null``) and only then filled, so the hashes are never
readable by others, not even for a moment. The documents are written as JSON, which is YAML
too: cloud-init reads them with ``yaml.safe_load``.

The seed's place is :func:`seed_path` (``<seed_dir>/<guest>-seed.iso``; /var/lib/libvirt/boot:
QEMU cannot open files under /root), the one name every caller uses. Once the guest has
booted with it, :mod:`kvmops.procedures.guest_create`
ejects it and removes the file (``seed_done``): it holds password hashes.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pycdlib

from kvmops import names
from kvmops.cmd import Cmd, change, read
from kvmops.errors import InvalidInput
from kvmops.guests import macs
from kvmops.images import content as c
from kvmops.images.passwords import Password
from kvmops.plan import Plan
from kvmops.site import Site

VOLUME_ID = "cidata"
FILES = {"user-data": "USERDATA.;1", "meta-data": "METADATA.;1", "network-config": "NETCONF.;1"}
SUDO_ALL = "ALL=(ALL) NOPASSWD:ALL"


@dataclass(frozen=True)
class CloudUser:
    """A user cloud-init creates (or, for an existing user like root, configures)."""

    name: str
    keys: tuple[str, ...] = ()
    password: Password | None = None
    sudo: bool = False
    shell: str = "/bin/bash"

    def __post_init__(self) -> None:
        c.user_name(self.name)
        object.__setattr__(self, "keys", tuple(c.public_key(k) for k in self.keys))
        if self.password is not None and self.password.user != self.name:
            raise InvalidInput(f"the password given for {self.name} is for {self.password.user}")

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name}
        if self.name != "root":
            doc["shell"] = self.shell
        if self.keys:
            doc["ssh_authorized_keys"] = list(self.keys)
        if self.password is not None:
            doc["hashed_passwd"] = self.password.hash()
            doc["lock_passwd"] = False
        if self.sudo:
            doc["sudo"] = SUDO_ALL
        return doc


@dataclass(frozen=True)
class StaticNet:
    """The network-config v2 entry of one NIC: ``10.5.68.237/24``, the default route via
    ``.254`` (only on the NIC that has it: ``gateway`` None on the others), DNS servers (on one
    NIC). ``interface`` is the entry's id; ``mac`` the NIC's MAC, which the entry matches.

    Matched by MAC only, without ``set-name``: cloud-init looks the NIC up by its MAC and
    configures it under whatever name the image gives it (``eth0`` with ``net.ifnames=0``,
    ``enp1s0`` with predictable names), so the address follows the NIC in every image.
    ``set-name`` would rename it: into the kernel's own ``ethN`` names that can race with the
    kernel naming the other NIC, and away from the name the image's other configuration and
    the operator expect. Renaming gains nothing once the match is by MAC.
    """

    address: str
    gateway: str | None
    dns: tuple[str, ...] = ()
    interface: str = "eth0"
    mac: str | None = None

    def __post_init__(self) -> None:
        try:
            iface = ipaddress.ip_interface(self.address)
            gw = ipaddress.ip_address(self.gateway) if self.gateway is not None else None
            for d in self.dns:
                ipaddress.ip_address(d)
        except ValueError as exc:
            raise InvalidInput(f"bad static address: {exc}") from None
        if iface.network.prefixlen == iface.max_prefixlen:
            raise InvalidInput(f"{self.address} has no network around it: give its prefix, e.g. /24")
        if gw is not None and gw not in iface.network:
            raise InvalidInput(f"gateway {gw} is not in {iface.network} (address {self.address})")
        if iface.ip == gw:
            raise InvalidInput(f"the address {iface.ip} is the gateway's")
        names.ifname(self.interface)
        if self.mac is not None:
            object.__setattr__(self, "mac", macs.normal(self.mac))

    def entry(self) -> dict[str, Any]:
        """This NIC's entry under ``ethernets``."""
        eth: dict[str, Any] = {}
        if self.mac:
            eth["match"] = {"macaddress": self.mac}
        eth["addresses"] = [self.address]
        if self.gateway is not None:
            # 0.0.0.0/0, not "default": cloud-init before 23.x (Debian 12's 22.4) rejects "to: default"
            # and then applies no network config at all (seen in the lab: no address, no SSH)
            eth["routes"] = [{"to": "0.0.0.0/0", "via": self.gateway}]
        if self.dns:
            eth["nameservers"] = {"addresses": list(self.dns)}
        return eth

    def document(self) -> dict[str, Any]:
        """A network-config of this NIC alone."""
        return network_document((self,))


def network_document(nets: Sequence[StaticNet]) -> dict[str, Any]:
    """``{"version": 2, "ethernets": {id: entry, ...}}``; at most one default route."""
    ids = [n.interface for n in nets]
    if len(set(ids)) != len(ids):
        raise InvalidInput(f"network-config: an entry id is given twice ({', '.join(ids)})")
    found = [n.mac for n in nets if n.mac]
    if len(set(found)) != len(found):
        raise InvalidInput(f"network-config: a MAC is matched twice ({', '.join(found)})")
    if sum(n.gateway is not None for n in nets) > 1:
        raise InvalidInput("network-config: the default route goes on one NIC only")
    return {"version": 2, "ethernets": {n.interface: n.entry() for n in nets}}


@dataclass(frozen=True)
class Seed:
    """What goes on the seed: hostname, instance id, users, the static addresses (one entry per NIC)."""

    hostname: str
    users: tuple[CloudUser, ...]
    nets: tuple[StaticNet, ...] = ()
    instance_id: str = ""
    ssh_pwauth: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names.guest_name(self.hostname)
        if not self.users:
            raise InvalidInput("a seed needs at least one user (the login user)")
        if not isinstance(self.nets, tuple):
            raise InvalidInput(f"nets must be a tuple of StaticNet, got {self.nets!r}")
        network_document(self.nets)  # checked now, not when the ISO is written

    def user_data(self) -> str:
        doc: dict[str, Any] = {
            # "default" first, as the image's own cloud.cfg has it: cloud-init merges our entry for
            # the image's default user (e.g. centos) into it, so that user keeps the image's groups
            # (wheel, adm, systemd-journal); a list without it replaces them (seen in the lab)
            "users": ["default", *(u.document() for u in self.users)],
            "ssh_pwauth": self.ssh_pwauth,
            **self.extra,
        }
        if any(u.name == "root" and u.keys for u in self.users):
            doc["disable_root"] = False  # else cloud-init turns root's keys into "log in as ..." stubs
        return "#cloud-config\n" + json.dumps(doc, indent=2) + "\n"

    def meta_data(self) -> str:
        iid = self.instance_id or f"iid-{self.hostname}"
        return json.dumps({"instance-id": iid, "local-hostname": self.hostname}, indent=2) + "\n"

    def network_config(self) -> str | None:
        return json.dumps(network_document(self.nets), indent=2) + "\n" if self.nets else None

    def files(self) -> dict[str, str]:
        out = {"user-data": self.user_data(), "meta-data": self.meta_data()}
        if (net := self.network_config()) is not None:
            out["network-config"] = net
        return out


def seed_iso(files: dict[str, str]) -> bytes:
    """An ISO 9660 image, volume id ``cidata``, with Joliet and Rock Ridge names."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_ID, sys_ident="LINUX")
    try:
        for name, text in files.items():
            if name not in FILES:
                raise InvalidInput(f"{name!r} is not a NoCloud file ({', '.join(FILES)})")
            data = text.encode()
            iso.add_fp(io.BytesIO(data), len(data), "/" + FILES[name], rr_name=name, joliet_path="/" + name)
        out = io.BytesIO()
        iso.write_fp(out)
        return out.getvalue()
    finally:
        iso.close()


def read_iso(data: bytes) -> tuple[str, dict[str, str]]:
    """Read a seed back: its volume id and ``{rock ridge name: text}`` (Joliet names checked)."""
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    try:
        vol = iso.pvd.volume_identifier.decode().strip()
        files: dict[str, str] = {}
        for child in iso.list_children(rr_path="/"):
            if child.is_dot() or child.is_dotdot():
                continue
            name = child.rock_ridge.name().decode()
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, rr_path="/" + name)
            files[name] = out.getvalue().decode()
        joliet = {
            ch.file_identifier().decode("utf-16-be")
            for ch in iso.list_children(joliet_path="/") if not (ch.is_dot() or ch.is_dotdot())
        }
        if joliet != set(files):
            raise InvalidInput(f"the ISO's Joliet names {sorted(joliet)} differ from Rock Ridge {sorted(files)}")
        return vol, files
    finally:
        iso.close()


def seed_path(site: Site, guest: str) -> str:
    """Where a guest's seed ISO lives on the host: ``<seed_dir>/<guest>-seed.iso`` (the site's
    ``libvirt.seed_dir``, /var/lib/libvirt/boot by default: QEMU cannot open it under /root)."""
    return f"{site.seed_dir.rstrip('/')}/{names.guest_name(guest)}-seed.iso"


def _iso_path(path: str) -> str:
    if not path.startswith("/") or not path.endswith(".iso") or "\0" in path or "\n" in path:
        raise InvalidInput(f"seed ISO path {path!r}: an absolute path ending in .iso")
    return path


def create_cmd(path: str) -> Cmd:
    """``install -D -m 0600 /dev/null PATH``: the file exists, empty and private, before any
    byte of the seed is written (a file left from before is replaced by a new one)."""
    return change("install", "-D", "-m", "0600", "/dev/null", _iso_path(path))


def write_cmd(path: str, data: bytes) -> Cmd:
    """``openssl base64 -d -A -out PATH`` with the ISO as base64 on stdin (masked); it writes
    into the file :func:`create_cmd` made, whose mode stays 0600."""
    return change("openssl", "base64", "-d", "-A", "-out", _iso_path(path),
                  stdin=base64.b64encode(data).decode(), stdin_secret=True)


def remove_cmd(path: str) -> Cmd:
    """``rm -f -- PATH``: the seed is removed once the guest has booted with it."""
    return change("rm", "-f", "--", _iso_path(path))


def seed_plan(seed: Seed, path: str) -> Plan:
    """Write the seed ISO to ``path`` on the host, mode 0600 from the start; attach it as the
    guest's CD-ROM with :func:`with_seed` (GuestSpec.cdrom)."""
    data = seed_iso(seed.files())
    plan = Plan(f"NoCloud seed ISO for {seed.hostname} at {path}")
    plan.add(f"create {path} empty with mode 600 (user-data holds password hashes)", create_cmd(path))
    plan.add(f"write {path} ({len(data)} bytes: {', '.join(seed.files())})", write_cmd(path, data))
    plan.add(f"check {path} is an ISO labelled {VOLUME_ID}", read("blkid", "-p", "-o", "export", path))
    plan.notes.append("cloud-init runs once per instance-id: change instance_id to make it run again")
    return plan


def with_seed(spec: Any, path: str) -> Any:
    """The guest spec with the seed ISO as its CD-ROM: ``replace(spec, cdrom=path)``."""
    return replace(spec, cdrom=path)


def users_for(login: str, keys: Sequence[str] = (), login_password: Password | None = None,
              root_password: Password | None = None, root_keys: Sequence[str] = (), *,
              sudo: bool = True) -> tuple[CloudUser, ...]:
    """The usual pair: the login user with keys, password and sudo; root with its password
    and keys (guide 3.3.1: both get ``authorized_keys``)."""
    users = [CloudUser(login, tuple(keys), login_password, sudo=sudo)]
    if root_password is not None or root_keys:
        users.append(CloudUser("root", tuple(root_keys), root_password))
    return tuple(users)
