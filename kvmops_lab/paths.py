"""Where the lab keeps its files (pure: no file is touched here).

``$KVMOPS_CACHE`` (default ``~/.cache/kvmops``) holds ``lab/``::

    lab/image-<hash>/   the built base image, kernel, initrd, keys; COMPLETE is written last
    lab/guest-<hash>/   the small guest cloud image
    lab/run/            one running lab: state.json, overlay, PV disk, serial log, site.toml
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def cache_root(env: dict[str, str] | None = None) -> Path:
    """``$KVMOPS_CACHE/lab`` or ``~/.cache/kvmops/lab``."""
    env = dict(os.environ) if env is None else env
    base = env.get("KVMOPS_CACHE") or str(Path(env.get("HOME", "/root")) / ".cache" / "kvmops")
    return Path(base) / "lab"


@dataclass(frozen=True)
class ImagePaths:
    """The files of one cached, built lab image."""

    dir: Path

    @property
    def root(self) -> Path:
        return self.dir / "root.img"

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.img"

    @property
    def key(self) -> Path:
        """The lab's client key (its public half is root's authorized_keys in the image)."""
        return self.dir / "id_ed25519"

    @property
    def host_keys(self) -> Path:
        """The image's SSH host public keys, one per line (for known_hosts)."""
        return self.dir / "host_keys.pub"

    @property
    def recipe(self) -> Path:
        return self.dir / "recipe.json"

    @property
    def marker(self) -> Path:
        """Written last: an image dir without it is half-built."""
        return self.dir / "COMPLETE"

    @property
    def complete(self) -> bool:
        return self.marker.is_file()


@dataclass(frozen=True)
class LabPaths:
    """Everything under one cache root."""

    root: Path

    @classmethod
    def default(cls) -> LabPaths:
        return cls(cache_root())

    def image(self, digest: str) -> ImagePaths:
        return ImagePaths(self.root / f"image-{digest[:16]}")

    def guest_dir(self, digest: str) -> Path:
        return self.root / f"guest-{digest[:16]}"

    @property
    def lock(self) -> Path:
        return self.root / "build.lock"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def state(self) -> Path:
        return self.run / "state.json"

    @property
    def overlay(self) -> Path:
        return self.run / "root-overlay.qcow2"

    @property
    def pv_disk(self) -> Path:
        return self.run / "pv.qcow2"

    @property
    def serial(self) -> Path:
        return self.run / "serial.log"

    @property
    def pidfile(self) -> Path:
        return self.run / "qemu.pid"

    @property
    def qmp(self) -> Path:
        return self.run / "qmp.sock"

    @property
    def known_hosts(self) -> Path:
        return self.run / "known_hosts"

    @property
    def site(self) -> Path:
        return self.run / "site.toml"

    @property
    def accel_cache(self) -> Path:
        return self.root / "accel.json"
