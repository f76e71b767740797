"""Where the lab keeps its files (pure: no file is touched here).

``$KVMOPS_CACHE`` (default ``~/.cache/kvmops``) holds ``lab/``::

    lab/image-<hash>/   the built base image, kernel, initrd, keys; COMPLETE is written last
    lab/guest-<hash>/   the small guest cloud image
    lab/run/            one running lab: state.json, overlay, PV disk, serial log, site.toml
    lab/run-<name>/     a named lab (``kvmops lab up --name kvm2``): the same files, its own
                        ports and keys' known_hosts; the built image is shared
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kvmops_lab.errors import LabError

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,23}$")


def check_name(name: str) -> str:
    """A lab instance's name: lowercase letters, digits and ``-``, a letter first, 24 at most."""
    if not _NAME.match(name):
        raise LabError(f"lab name {name!r}: use lowercase letters, digits and '-', starting with a letter "
                       "(at most 24), e.g. kvm2")
    return name


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
    """Everything under one cache root; ``name`` picks a named lab's run folder ("": the default)."""

    root: Path
    name: str = ""

    def __post_init__(self) -> None:
        if self.name:
            check_name(self.name)

    @classmethod
    def default(cls) -> LabPaths:
        return cls(cache_root())

    @classmethod
    def named(cls, name: str | None) -> LabPaths:
        """The default lab for no name, else the named one (same cache root, own run folder)."""
        return cls(cache_root(), name or "")

    def cli(self, sub: str) -> str:
        """The command line of ``kvmops lab SUB`` for this lab (``--name N`` for a named one)."""
        return f"kvmops lab {sub}" + (f" --name {self.name}" if self.name else "")

    def image(self, digest: str) -> ImagePaths:
        return ImagePaths(self.root / f"image-{digest[:16]}")

    def guest_dir(self, digest: str) -> Path:
        return self.root / f"guest-{digest[:16]}"

    @property
    def lock(self) -> Path:
        return self.root / "build.lock"

    @property
    def up_lock(self) -> Path:
        """One ``up`` at a time per lab (named labs boot independently of the default one)."""
        return self.root / (f"up-{self.name}.lock" if self.name else "up.lock")

    @property
    def run(self) -> Path:
        return self.root / (f"run-{self.name}" if self.name else "run")

    def all_runs(self) -> list[Path]:
        """The run folders of every lab under this root, the default and the named ones."""
        return sorted(p for p in self.root.glob("run*") if p.name == "run" or p.name.startswith("run-"))

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
