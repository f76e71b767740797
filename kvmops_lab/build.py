"""Build the lab image once per recipe and cache it (needs root: debootstrap, chroot, mounts).

The steps, in order (``COMPLETE`` is written last, so a dir without it is half-built)::

    debootstrap --variant=minbase --include=... bookworm ROOTFS http://deb.debian.org/debian
    chroot ROOTFS apt-get install --no-install-recommends network-manager libvirt-daemon-system ...
    ssh-keygen -A -f ROOTFS; ssh-keygen -t ed25519 -f id_ed25519 (root's authorized key)
    mkfs.ext4 -F -L kvmlab -d ROOTFS root.img 3G
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from kvmops.cmd import Cmd, Kind, change
from kvmops.runners import LocalRunner
from kvmops_lab.errors import LabError
from kvmops_lab.paths import ImagePaths, LabPaths
from kvmops_lab.progress import Phases
from kvmops_lab.recipe import Recipe

APT_ENV = (
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("LVM_SUPPRESS_FD_WARNINGS", "1"),
    ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
)


def debootstrap_cmd(recipe: Recipe, rootfs: Path) -> Cmd:
    """``debootstrap --variant=minbase --include=a,b bookworm ROOTFS MIRROR``."""
    return change(
        "debootstrap", f"--variant={recipe.variant}", f"--include={recipe.include}",
        recipe.suite, str(rootfs), recipe.mirror, timeout=1800,
    )


def chroot_cmd(rootfs: Path, *argv: str, timeout: float = 1800) -> Cmd:
    """``chroot ROOTFS argv...`` with a non-interactive apt environment."""
    return Cmd(("chroot", str(rootfs), *argv), Kind.CHANGE, env=APT_ENV, timeout=timeout)


def apt_install_cmd(recipe: Recipe, rootfs: Path) -> Cmd:
    """``chroot ROOTFS apt-get install -y --no-install-recommends PKG...``."""
    return chroot_cmd(rootfs, "apt-get", "install", "-y", "--no-install-recommends",
                      *recipe.host_packages)


def mkfs_cmd(rootfs: Path, image: Path, size: str) -> Cmd:
    """``mkfs.ext4 -F -q -L kvmlab -d ROOTFS root.img 3G``."""
    return change("mkfs.ext4", "-F", "-q", "-L", "kvmlab", "-d", str(rootfs), str(image), size,
                  timeout=900)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` (from /proc/self/mounts), deepest first."""
    base = str(path.resolve())
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point == base or point.startswith(base + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def safe_rmtree(path: Path) -> None:
    """Remove a build folder, never while something (e.g. the host's /dev) is mounted in it."""
    runner = LocalRunner()
    for point in mounts_under(path):
        runner.run(change("umount", "-l", point), check=False)
    left = mounts_under(path)
    if left:
        raise LabError(f"{path} still has mounts ({', '.join(left)}): unmount them, then retry")
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def chroot_mounts(runner: LocalRunner, rootfs: Path) -> Iterator[None]:
    """proc, sys and dev inside the chroot, plus a policy-rc.d that starts no service."""
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    mounts = [("proc", "-t", "proc", "proc"), ("sys", "--bind", "/sys"), ("dev", "--bind", "/dev")]
    done: list[Path] = []
    try:
        for sub, *how in mounts:
            runner.run(change("mount", *how, str(rootfs / sub)))
            done.append(rootfs / sub)
        yield
    finally:
        for point in reversed(done):
            runner.run(change("umount", "-l", str(point)), check=False)
        policy.unlink(missing_ok=True)


@contextmanager
def file_lock(path: Path, on_wait: Callable[[], None]) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``; ``on_wait`` is called once if someone else holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def build_lock(paths: LabPaths, say: Phases) -> AbstractContextManager[None]:
    """One build at a time (another ``kvmops lab up`` waits here)."""
    return file_lock(paths.lock, lambda: say("another kvmops lab build runs: waiting for it"))


def ensure_image(paths: LabPaths, recipe: Recipe | None = None, say: Phases | None = None) -> ImagePaths:
    """The cached image of ``recipe``, built first when missing or half-built."""
    recipe = recipe or Recipe()
    say = say or Phases()
    img = paths.image(recipe.digest)
    if img.complete:
        say(f"image: cached {img.dir} (recipe {recipe.digest[:12]})")
        return img
    with build_lock(paths, say):
        if img.complete:
            return img
        if img.dir.exists():
            say(f"image: {img.dir} is half-built (no {img.marker.name} marker): removing and rebuilding")
            safe_rmtree(img.dir)
        check_can_build()
        build_image(img, recipe, say)
    prune_other_images(paths, img, say)
    return img


def check_can_build() -> None:
    if os.geteuid() != 0:
        raise LabError("building the lab image needs root (debootstrap, chroot, mounts): run as root")
    missing = [t for t in ("debootstrap", "mkfs.ext4", "ssh-keygen", "chroot") if not shutil.which(t)]
    if missing:
        raise LabError(f"missing tools for the lab build: {', '.join(missing)} "
                       "(apt-get install debootstrap e2fsprogs openssh-client)")


def build_image(img: ImagePaths, recipe: Recipe, say: Phases) -> None:
    """Every build step; the marker is written only after all of them succeeded."""
    runner = LocalRunner()
    rootfs = img.dir / "rootfs"
    img.dir.mkdir(parents=True)
    t0 = say.elapsed
    say(f"image: building {img.dir} (debootstrap {recipe.suite}, about 2 minutes)")
    runner.run(debootstrap_cmd(recipe, rootfs), on_line=say.lines("debootstrap"))
    say("image: installing the KVM host packages in the chroot")
    with chroot_mounts(runner, rootfs):
        runner.run(chroot_cmd(rootfs, "apt-get", "update", "-q"), on_line=say.lines("apt"))
        runner.run(apt_install_cmd(recipe, rootfs), on_line=say.lines("apt"))
    configure_rootfs(runner, rootfs, img, recipe)
    say("image: kernel, initrd and keys")
    extract_boot(rootfs, img)
    say(f"image: mkfs.ext4 -d ({recipe.image_size})")
    runner.run(mkfs_cmd(rootfs, img.root, recipe.image_size))
    safe_rmtree(rootfs)
    img.recipe.write_text(recipe.to_json())
    img.marker.write_text(f"built in {say.elapsed - t0:.0f}s\n")
    say(f"image: built in {say.elapsed - t0:.0f}s")


def configure_rootfs(runner: LocalRunner, rootfs: Path, img: ImagePaths, recipe: Recipe) -> None:
    """Files of the recipe, masked units, host keys, root's authorized key; apt cache emptied."""
    for name, content in recipe.files.items():
        target = rootfs / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    (rootfs / "etc/NetworkManager/system-connections/lab0.nmconnection").chmod(0o600)
    for unit in recipe.masked_units:
        link = rootfs / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    runner.run(change("ssh-keygen", "-A", "-f", str(rootfs)))
    runner.run(change("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kvmops-lab",
                      "-f", str(img.key)))
    ssh_dir = rootfs / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    auth = ssh_dir / "authorized_keys"
    auth.write_text(img.key.with_suffix(".pub").read_text())
    auth.chmod(0o600)
    pubs = sorted((rootfs / "etc/ssh").glob("ssh_host_*_key.pub"))
    img.host_keys.write_text("".join(" ".join(p.read_text().split()[:2]) + "\n" for p in pubs))


def extract_boot(rootfs: Path, img: ImagePaths) -> None:
    """Copy the one kernel and its initrd out of /boot for QEMU's -kernel/-initrd."""
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise LabError(f"expected one kernel in {rootfs}/boot, found {[k.name for k in kernels]}")
    version = kernels[0].name.removeprefix("vmlinuz-")
    initrd = rootfs / "boot" / f"initrd.img-{version}"
    if not initrd.is_file():
        raise LabError(f"no initrd for kernel {version} in {rootfs}/boot: initramfs-tools did not run")
    shutil.copyfile(kernels[0], img.kernel)
    shutil.copyfile(initrd, img.initrd)
    (img.dir / "kernel-version").write_text(version + "\n")


def prune_other_images(paths: LabPaths, keep: ImagePaths, say: Phases) -> None:
    """Drop images of older recipes (a running lab's overlay pins its base: keep those)."""
    pinned = _running_bases(paths)
    for other in paths.root.glob("image-*"):
        if other != keep.dir and other.is_dir() and str(other) not in pinned:
            say(f"image: removing the image of an older recipe, {other}")
            safe_rmtree(other)


def _running_bases(paths: LabPaths) -> set[str]:
    """The base images of every lab with a state file (the default one and the named ones)."""
    from kvmops_lab.state import read_state

    bases = set()
    for run in paths.all_runs():
        try:
            state = read_state(run / "state.json")
        except LabError:
            continue
        if state:
            bases.add(str(Path(state.image_dir)))
    return bases
