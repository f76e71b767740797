"""The manifest of a backup (``manifest.json``, written last): the guest's definition, its
disks with their sizes and the sha256 of the raw data and of each compressed file, the
compression, the times and the kvmops version. A backup without its manifest is incomplete and
is never used for a restore; a manifest that does not read back is treated the same way."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from kvmops import __version__, names
from kvmops.errors import KvmopsError
from kvmops.transfer.commands import CODECS

FORMAT = 1
MANIFEST = "manifest.json"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # a backup's folder: <guest>/<stamp>


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
    """A manifest from its JSON; :class:`ManifestError` names ``where`` and what is wrong."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a kvmops backup manifest of format {FORMAT}")
        disks = tuple(_disk(d) for d in data["disks"])
        m = Manifest(**{**data, "disks": disks, "networks": _networks(data["networks"])})
        _check(m, where)
    except (ValueError, KeyError, TypeError) as exc:  # InvalidInput (a bad name) is a ValueError
        raise ManifestError(f"{where}: {exc}") from None
    return m


def _disk(d: Any) -> DiskBackup:
    if not isinstance(d, dict):
        raise TypeError("a disk is a mapping")
    disk = DiskBackup(**d)
    if not all(isinstance(getattr(disk, k), int) and getattr(disk, k) >= 0 for k in ("size", "compressed_size")):
        raise ValueError(f"disk {disk.dev}: sizes must be whole numbers")
    return disk


def _networks(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not all(isinstance(v, int) for v in value.values()):
        raise TypeError("networks maps bridges to VLAN numbers")
    return {str(k): int(v) for k, v in value.items()}


def _check(m: Manifest, where: str) -> None:
    if m.compression not in CODECS:
        raise ManifestError(f"{where}: unknown compression {m.compression!r}")
    if not m.disks:
        raise ManifestError(f"{where}: no disks")
    names.guest_name(m.guest)
    for d in m.disks:
        names.lv_name(d.lv)
        if "/" in d.file or not d.file or d.file.startswith("."):
            raise ManifestError(f"{where}: disk {d.dev}: bad file name {d.file!r}")
        for digest in (d.sha256, d.compressed_sha256):
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ManifestError(f"{where}: disk {d.dev}: {digest!r} is not a sha256")
