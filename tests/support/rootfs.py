"""A small but real Linux tree for image tests, built once with debootstrap and cached.

``debootstrap --variant=minbase --include=sudo,grub2-common bookworm`` from ``http://deb.debian.org/debian``,
plus a login user ``centos``; documentation, man pages, locales and apt caches are pruned so
that the tree fits comfortably into a 300 MB test filesystem. The tree holds ``chpasswd``,
``visudo``, ``grub-mkconfig`` (and an empty ``/boot/grub``), ``useradd``, ``/etc/passwd``
and ``/etc/os-release``: what the offline tweaks use.

Cached under ``~/.cache/kvmops/test-rootfs/<recipe>`` (``KVMOPS_CACHE`` overrides the
``~/.cache/kvmops`` part). The folder name is a hash of the recipe: a changed recipe builds anew.
Built into a temporary folder and renamed into place when complete, so a failed or
interrupted build never leaves a half tree that looks finished.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
INCLUDE = ("sudo", "grub2-common")
LOGIN_USER = "centos"
PRUNE = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
         "var/cache/apt", "var/lib/apt/lists", "usr/share/zoneinfo")
RECIPE = f"minbase {SUITE} {MIRROR} include={','.join(INCLUDE)} user={LOGIN_USER} prune={PRUNE} v2"


def cache_root() -> Path:
    base = os.environ.get("KVMOPS_CACHE") or str(Path.home() / ".cache" / "kvmops")
    return Path(base) / "test-rootfs"


def cached_tree() -> Path:
    """Where the tree of the current recipe lives (it may not exist yet)."""
    digest = hashlib.sha256(RECIPE.encode()).hexdigest()[:12]
    return cache_root() / f"{SUITE}-{digest}"


def rootfs(progress: bool = False) -> Path:
    """The cached tree, built first when missing (about 1-2 minutes, needs root and the mirror)."""
    tree = cached_tree()
    if (tree / "etc" / "os-release").exists():
        return tree
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed: apt-get install debootstrap")
    tree.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=tree.parent))
    try:
        _build(work, progress)
        work.rename(tree)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return tree


def _build(work: Path, progress: bool) -> None:
    out = None if progress else subprocess.DEVNULL
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}", SUITE, str(work), MIRROR],
        check=True, stdout=out, stderr=subprocess.STDOUT if out is not None else None,
    )
    subprocess.run(
        ["chroot", str(work), "useradd", "--create-home", "--shell", "/bin/bash", LOGIN_USER],
        check=True,
    )
    (work / "boot" / "grub").mkdir(parents=True, exist_ok=True)
    for rel in PRUNE:
        target = work / rel
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir()
    for leftover in (work / "var" / "log").glob("*.log"):
        leftover.unlink()


def tree_size(tree: Path) -> int:
    """Bytes used by the tree (apparent sizes, no hard-link double counting)."""
    seen: set[int] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(tree):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total


if __name__ == "__main__":
    import sys

    built = rootfs(progress="-v" in sys.argv)
    print(built, f"{tree_size(built) / 2**20:.0f} MiB")
