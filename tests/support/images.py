"""Real partitioned test images holding the cached rootfs (tests/support/rootfs.py).

``build_image`` writes a sparse image file: a partition table made by sfdisk, filesystems
made by mkfs on ``/dev/loopNpM`` (loop + ``partx -a``), the tree copied into the root.
Everything attached or mounted while building is undone before it returns.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.rootfs import rootfs

MiB = 1 << 20


@dataclass(frozen=True)
class Layout:
    """``label`` gpt/dos; ``parts``: (size MiB or None for the rest, fstype or '' , role)."""

    label: str
    size_mib: int
    parts: tuple[tuple[int | None, str, str], ...]


DEBIAN_GRUB = """# If you change this file, run 'update-grub' afterwards to update
GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX=""
"""

XFS_GPT = Layout("gpt", 340, ((None, "xfs", "root"),))
EXT4_DOS = Layout("dos", 200, ((24, "ext4", "boot"), (None, "ext4", "root")))


def sh(*argv: str, stdin: str | None = None) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, input=stdin).stdout


def build_image(path: Path, layout: Layout) -> Path:
    """Create the image file at ``path`` and return it."""
    tree = rootfs()
    path.unlink(missing_ok=True)
    sh("truncate", "-s", f"{layout.size_mib}M", str(path))
    lines = [f"label: {layout.label}"]
    for size, _fs, _role in layout.parts:
        lines.append(f"{f'size={size}M, ' if size else ''}type={'L' if layout.label == 'gpt' else '83'}")
    sh("sfdisk", "-q", str(path), stdin="\n".join(lines) + "\n")
    loop = sh("losetup", "--find", "--show", str(path)).strip()
    try:
        sh("partx", "--add", loop)
        for n, (_size, fs, role) in enumerate(layout.parts, 1):
            _fill(f"{loop}p{n}", fs, role, tree)
    finally:
        subprocess.run(["partx", "--delete", loop], capture_output=True)
        subprocess.run(["losetup", "--detach", loop], capture_output=True)
    return path


def _fill(dev: str, fs: str, role: str, tree: Path) -> None:
    if fs == "xfs":
        sh("mkfs.xfs", "-q", "-f", "-L", role, dev)
    elif role == "boot":
        with tempfile.TemporaryDirectory() as seed:
            (Path(seed) / "grub").mkdir()
            sh(f"mkfs.{fs}", "-q", "-F", "-L", role, "-d", seed, dev)
    else:
        sh(f"mkfs.{fs}", "-q", "-F", "-L", role, dev)
    if role != "root":
        return
    mnt = tempfile.mkdtemp(prefix="kvmops-build-")
    try:
        sh("mount", dev, mnt)
        try:
            sh("cp", "-a", f"{tree}/.", mnt)
            etc = Path(mnt) / "etc"
            boot = "LABEL=boot /boot ext4 defaults 0 2\n" if fs == "ext4" else ""
            (etc / "fstab").write_text(f"LABEL=root / {fs} defaults 0 1\n{boot}")
            (etc / "default" / "grub").write_text(DEBIAN_GRUB)
        finally:
            sh("umount", mnt)
    finally:
        Path(mnt).rmdir()


def cached_image(name: str, layout: Layout, folder: Path) -> Path:
    """A copy of a built image in ``folder`` (built once per session into the cache's side)."""
    from tests.support.rootfs import cache_root

    master = cache_root() / f"{name}-v2.raw"
    if not master.exists():
        tmp = master.with_suffix(".building")
        build_image(tmp, layout)
        tmp.rename(master)
    target = folder / f"{name}.raw"
    subprocess.run(["cp", "--sparse=always", str(master), str(target)], check=True)
    return target


@contextmanager
def mounted_root(image: Path, partition: int, *, write: bool = False) -> Iterator[Path]:
    """The image's partition mounted (read-only unless ``write``), independent of kvmops."""
    loop = sh("losetup", "--find", "--show", *(() if write else ("--read-only",)), str(image)).strip()
    mnt = Path(tempfile.mkdtemp(prefix="kvmops-check-"))
    try:
        sh("partx", "--add", loop)
        dev = f"{loop}p{partition}"
        fstype = sh("blkid", "-p", "-s", "TYPE", "-o", "value", dev).strip()
        sh("mount", "-o", ("rw" if write else "ro") + (",nouuid" if fstype == "xfs" else ""), dev, str(mnt))
        try:
            yield mnt
        finally:
            sh("umount", str(mnt))
    finally:
        subprocess.run(["partx", "--delete", loop], capture_output=True)
        subprocess.run(["losetup", "--detach", loop], capture_output=True)
        mnt.rmdir()


def put_files(image: Path, partition: int, files: dict[str, str]) -> None:
    """Write files into the image (test setup, e.g. an SELinux config)."""
    with mounted_root(image, partition, write=True) as root:
        for rel, text in files.items():
            target = root / rel.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)


def leftovers(folder: Path) -> tuple[list[str], list[str]]:
    """Loop devices over files in ``folder`` and mounts under /run/kvmops or ``folder``.

    Other test runs on the machine may hold their own loop devices: only ours count.
    """
    loops = [ln for ln in sh("losetup", "-a").splitlines() if str(folder) in ln]
    mounts = [ln for ln in Path("/proc/mounts").read_text().splitlines()
              if " /run/kvmops/" in ln or str(folder) in ln]
    return loops, mounts

