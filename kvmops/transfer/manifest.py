"""The manifest of a backup (``manifest.json``, written last): the guest's definition, its
disks with their sizes and the sha256 of the raw data and of each compressed file, the
compression, the times and the kvmops version. A backup without its manifest is incomplete and
is never used for a restore; a manifest that does not read back is treated the same way."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from kvmops import __version__, names
from kvmops.bounded import load_json
from kvmops.errors import KvmopsError
from kvmops.transfer.commands import CODECS

FORMAT = 1
MANIFEST = "manifest.json"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # a backup's folder: <guest>/<stamp>
MAX_BYTES = 4 << 20  # a manifest's size at most (a guest's XML and a few lines per disk)
MAX_DEPTH = 4  # its nesting: the manifest, its disks, a disk
MAX_DISKS = 64
MAX_NETWORKS = 64
MAX_TEXT = 256  # characters of a name, time or version in it
_SHORT = ("guest", "stamp", "source_site", "source_vg", "lv_prefix", "compression", "started", "finished",
          "kvmops_version")
_STAMP = re.compile(r"\d{8}T\d{6}Z")
_DEV = re.compile(r"[a-z][a-z0-9]{0,15}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEYS: dict[str, type] = {
    "guest": str, "stamp": str, "source_site": str, "source_vg": str, "lv_prefix": str, "xml": str,
    "networks": dict, "compression": str, "disks": list, "started": str, "finished": str,
    "kvmops_version": str, "format": int,
}
_DISK_KEYS: dict[str, type] = {
    "dev": str, "lv": str, "size": int, "file": str, "sha256": str, "compressed_sha256": str,
    "compressed_size": int,
}


class ManifestError(KvmopsError):
    """A manifest that is not what kvmops writes (damaged, or from elsewhere)."""


@dataclass(frozen=True)
class DiskBackup:
    """One disk in a backup: its target, LV and size, the file, and the sha256 sums."""

    dev: str
    lv: str
    size: int
    file: str
    sha256: str  # of the raw data (the LV)
    compressed_sha256: str
    compressed_size: int


@dataclass(frozen=True)
class Manifest:
    """What a complete backup holds (see the module doc)."""

    guest: str
    stamp: str
    source_site: str
    source_vg: str
    lv_prefix: str
    xml: str
    networks: Mapping[str, int]  # the guest's bridges on the source -> their VLANs
    compression: str
    disks: tuple[DiskBackup, ...]
    started: str
    finished: str
    kvmops_version: str = __version__
    format: int = FORMAT

    def to_json(self) -> str:
        data = asdict(self)
        data["networks"] = dict(self.networks)
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @property
    def size(self) -> int:
        return sum(d.size for d in self.disks)


def parse_manifest(text: str, where: str) -> Manifest:
    """A manifest from its JSON, checked against the schema (bounded: :data:`MAX_BYTES`, nesting
    :data:`MAX_DEPTH`; every key known and of its type; disks unique by target, LV and file);
    :class:`ManifestError` names ``where`` and what is wrong."""
    try:
        data = load_json(text, where, max_bytes=MAX_BYTES, max_depth=MAX_DEPTH)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a kvmops backup manifest of format {FORMAT}")
        _keys(data, _KEYS, "the manifest")
        disks = data["disks"]
        if not isinstance(disks, list) or not 0 < len(disks) <= MAX_DISKS:
            raise ValueError(f"disks: a list of 1 to {MAX_DISKS} disks")
        m = Manifest(**{**data, "disks": tuple(_disk(d, i) for i, d in enumerate(disks)),
                        "networks": _networks(data["networks"])})
        _check(m)
    except ManifestError:
        raise
    except (ValueError, KeyError, TypeError) as exc:  # InvalidInput (a bad name, a bound) is a ValueError
        raise ManifestError(f"{where}: {str(exc).removeprefix(where + ': ')}") from None
    return m


def _keys(data: dict[str, Any], keys: dict[str, type], what: str) -> None:
    """Exactly ``keys``, each of its type (a bool is no int)."""
    unknown, missing = sorted(set(data) - set(keys)), sorted(set(keys) - set(data))
    if unknown or missing:
        raise ValueError(f"{what}: " + "; ".join(
            ([f"unknown key(s) {', '.join(map(repr, unknown))}"] if unknown else [])
            + ([f"missing key(s) {', '.join(missing)}"] if missing else [])))
    for key, typ in keys.items():
        value = data[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ValueError(f"{what}: {key} must be {typ.__name__}, got {type(value).__name__}")
        if isinstance(value, str) and key in _SHORT and len(value) > MAX_TEXT:
            raise ValueError(f"{what}: {key} is longer than {MAX_TEXT} characters")


def _disk(d: Any, i: int) -> DiskBackup:
    if not isinstance(d, dict):
        raise TypeError(f"disks[{i}] must be a mapping")
    _keys(d, _DISK_KEYS, f"disks[{i}]")
    disk = DiskBackup(**d)
    if disk.size <= 0 or disk.compressed_size < 0:
        raise ValueError(f"disk {disk.dev}: sizes must be whole numbers (the disk's above 0)")
    return disk


def _networks(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > MAX_NETWORKS:
        raise TypeError(f"networks maps at most {MAX_NETWORKS} bridges to VLAN numbers")
    for bridge, vlan in value.items():
        names.ifname(bridge)
        if isinstance(vlan, bool) or not isinstance(vlan, int) or not 1 <= vlan <= 4094:
            raise ValueError(f"networks: {bridge}: VLAN {vlan!r} is not 1-4094")
    return dict(value)


def _check(m: Manifest) -> None:
    if m.compression not in CODECS:
        raise ValueError(f"unknown compression {m.compression!r}")
    if not _STAMP.fullmatch(m.stamp):
        raise ValueError(f"stamp {m.stamp!r} is not a backup's time (YYYYMMDDTHHMMSSZ)")
    names.guest_name(m.guest)
    names.host_name(m.source_site)
    names.vg_name(m.source_vg)
    names.lv_name(m.lv_prefix)
    for d in m.disks:
        if not _DEV.fullmatch(d.dev):
            raise ValueError(f"disk {d.dev!r}: not a disk target such as vda")
        names.lv_name(d.lv)
        if "/" in d.file or not d.file or d.file.startswith(".") or d.file == MANIFEST or len(d.file) > MAX_TEXT:
            raise ValueError(f"disk {d.dev}: bad file name {d.file!r}")
        for digest in (d.sha256, d.compressed_sha256):
            if not _SHA256.fullmatch(digest):
                raise ValueError(f"disk {d.dev}: {digest[:80]!r} is not a sha256")
    for field_name in ("dev", "lv", "file"):
        seen = [getattr(d, field_name) for d in m.disks]
        twice = sorted({x for x in seen if seen.count(x) > 1})
        if twice:
            raise ValueError(f"two disks with the same {field_name} {', '.join(twice)}: each disk is restored "
                             "once, into its own LV, from its own file")
