"""Build the realistic guest image (``cloud.raw``) once per recipe and cache it (needs root).

The steps (``COMPLETE`` is written last, so a folder without it is half-built)::

    truncate -s 2G disk.raw; sfdisk --label dos disk.raw <<< 'start=2048, type=83, bootable'
    losetup --find --show disk.raw; partx -a /dev/loopN
    mkfs.xfs -L root -m uuid=<from the recipe> /dev/loopNp1; mount /dev/loopNp1 MNT
    debootstrap --variant=minbase --include=systemd-sysv,udev,... bookworm MNT MIRROR
    chroot MNT apt-get install --no-install-recommends linux-image-cloud-amd64 grub-pc-bin ...
    (files of the recipe; wheel group; root locked; host keys and machine-id removed)
    chroot MNT grub-install --target=i386-pc /dev/loopN; grub.cfg written (serial, root=UUID)
    fstrim MNT; umount; partx -d; losetup -d

Public API: :func:`ensure_cloud_image` -> :class:`CloudImage` (the raw file and the build's
manifest: seconds per phase, virtual and allocated bytes, kernel, package list).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvmops.cmd import change
from kvmops.runners import LocalRunner
from kvmops_lab.build import build_lock, chroot_cmd, chroot_mounts, safe_rmtree
from kvmops_lab.cloud_recipe import CloudRecipe, fstab, grub_cfg
from kvmops_lab.errors import LabError
from kvmops_lab.loopdisk import attached, mounted
from kvmops_lab.paths import LabPaths
from kvmops_lab.progress import Phases

IN_LAB_FILE = "/var/lib/kvmops/images/cloud.raw"


@dataclass(frozen=True)
class CloudImage:
    """A built image: ``raw`` (sparse), its folder and what the build measured."""

    dir: Path

    @property
    def raw(self) -> Path:
        return self.dir / "cloud.raw"

    @property
    def marker(self) -> Path:
        return self.dir / "COMPLETE"

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def complete(self) -> bool:
        return self.marker.is_file()

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.manifest_path.read_text())
        return data


def cloud_dir(paths: LabPaths, recipe: CloudRecipe) -> CloudImage:
    return CloudImage(paths.root / f"cloud-{recipe.digest[:16]}")


def ensure_cloud_image(paths: LabPaths | None = None, recipe: CloudRecipe | None = None,
                       say: Phases | None = None) -> CloudImage:
    """The cached image of ``recipe``, built first when missing or half-built."""
    paths = paths or LabPaths.default()
    recipe = recipe or CloudRecipe()
    say = say or Phases()
    img = cloud_dir(paths, recipe)
    if img.complete:
        say(f"cloud image: cached {img.raw} (recipe {recipe.digest[:12]})")
        return img
    with build_lock(paths, say):
        if img.complete:
            return img
        if img.dir.exists():
            say(f"cloud image: {img.dir} is half-built (no COMPLETE marker): removing and rebuilding")
            safe_rmtree(img.dir)
        _need_tools()
        img.dir.mkdir(parents=True)
        manifest = build_cloud_image(img, recipe, say)
        img.manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        img.marker.write_text(f"built in {manifest['build_s']:.0f}s\n")
    for other in paths.root.glob("cloud-*"):
        if other != img.dir and other.is_dir():
            say(f"cloud image: removing the image of an older recipe, {other}")
            safe_rmtree(other)
    return img


def _need_tools() -> None:
    if os.geteuid() != 0:
        raise LabError("building the cloud image needs root (loop device, mounts, debootstrap, chroot)")
    tools = {"debootstrap": "debootstrap", "mkfs.xfs": "xfsprogs", "sfdisk": "fdisk", "partx": "util-linux",
             "losetup": "mount", "fstrim": "util-linux"}
    missing = sorted({pkg for tool, pkg in tools.items() if shutil.which(tool) is None})
    if missing:
        raise LabError(f"the cloud image build needs {', '.join(missing)}: apt-get install {' '.join(missing)}")


def build_cloud_image(img: CloudImage, recipe: CloudRecipe, say: Phases) -> dict[str, Any]:
    """Every build step; returns the manifest (the caller writes it, then the marker)."""
    runner = LocalRunner()
    times: dict[str, float] = {}
    t0 = time.monotonic()
    work = img.dir / "partial.raw"
    runner.run(change("truncate", "-s", recipe.disk_size, str(work)))
    runner.run(change("sfdisk", "--quiet", "--label", "dos", str(work), stdin="start=2048, type=83, bootable\n"))
    with attached(runner, work) as disk:
        runner.run(change("mkfs.xfs", "-q", "-L", "root", "-m", f"uuid={recipe.fs_uuid}", disk.part1))
        with mounted(runner, disk.part1, img.dir / "mnt") as mnt:
            say(f"cloud image: debootstrap {recipe.suite} into the xfs root (about 2 minutes)")
            t = time.monotonic()
            runner.run(change("debootstrap", "--variant=minbase", f"--include={recipe.include}",
                              recipe.suite, str(mnt), recipe.mirror, timeout=1800),
                       on_line=say.lines("debootstrap"))
            times["debootstrap_s"] = time.monotonic() - t
            _write(mnt, "/etc/initramfs-tools/conf.d/90-kvmops.conf", recipe.files)
            _write(mnt, "/etc/initramfs-tools/modules", recipe.files)
            with chroot_mounts(runner, mnt):
                say("cloud image: kernel, GRUB, NetworkManager, sshd, sudo, cloud-init, guest agent")
                t = time.monotonic()
                runner.run(chroot_cmd(mnt, "apt-get", "update", "-q"), on_line=say.lines("apt"))
                runner.run(chroot_cmd(mnt, "apt-get", "install", "-y", "--no-install-recommends",
                                      *recipe.image_packages), on_line=say.lines("apt"))
                times["packages_s"] = time.monotonic() - t
                t = time.monotonic()
                version = configure(runner, mnt, recipe)
                runner.run(chroot_cmd(mnt, "grub-install", "--target=i386-pc", "--modules=part_msdos xfs",
                                      disk.device, timeout=300))
                (mnt / "boot/grub/grub.cfg").write_text(grub_cfg(recipe.fs_uuid, version))
                packages = runner.run(chroot_cmd(mnt, "dpkg-query", "-W", "-f", "${Package} ${Version}\n")).stdout
                runner.run(chroot_cmd(mnt, "apt-get", "clean"))
            cleanup(mnt)
            runner.run(change("fstrim", str(mnt)))
            used = shutil.disk_usage(mnt).used
            times["configure_s"] = time.monotonic() - t
    work.rename(img.raw)
    (img.dir / "packages.txt").write_text(packages)
    st = img.raw.stat()
    manifest = {
        "recipe": recipe.digest, "build_s": round(time.monotonic() - t0, 1),
        **{k: round(v, 1) for k, v in times.items()},
        "virtual_bytes": st.st_size, "allocated_bytes": st.st_blocks * 512, "root_fs_used_bytes": used,
        "kernel": version, "fs_uuid": recipe.fs_uuid, "packages": len(packages.splitlines()),
        "login_user_in_image": False,
    }
    say(f"cloud image: built in {manifest['build_s']:.0f}s, {st.st_blocks * 512 / 2**20:.0f} MiB allocated "
        f"of {st.st_size / 2**30:.1f} GiB")
    return manifest


def _write(root: Path, name: str, files: dict[str, str]) -> None:
    target = root / name.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    target.write_text(files[name])


def configure(runner: LocalRunner, root: Path, recipe: CloudRecipe) -> str:
    """Files, fstab, masked units, the wheel group, root locked; returns the kernel version."""
    for name in recipe.files:
        _write(root, name, recipe.files)
    (root / "etc/fstab").write_text(fstab(recipe.fs_uuid))
    (root / "etc/sudoers.d/10-wheel").chmod(0o440)
    for unit in recipe.masked_units:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    (root / "var/log/journal").mkdir(parents=True, exist_ok=True)
    runner.run(chroot_cmd(root, "groupadd", "--system", "wheel"))
    runner.run(chroot_cmd(root, "passwd", "--lock", "root"))
    runner.run(chroot_cmd(root, "systemd-tmpfiles", "--create", "--prefix", "/var/log/journal"), check=False)
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if len(kernels) == 1:
        prune_modules(runner, root, kernels[0].name.removeprefix("vmlinuz-"), recipe.pruned_modules)
    if len(kernels) != 1:
        raise LabError(f"expected one kernel in the image's /boot, found {[k.name for k in kernels]}")
    version = kernels[0].name.removeprefix("vmlinuz-")
    if not (root / "boot" / f"initrd.img-{version}").is_file():
        raise LabError(f"no initrd for kernel {version} in the image: initramfs-tools did not run")
    return version


def prune_modules(runner: LocalRunner, root: Path, version: str, folders: tuple[str, ...]) -> None:
    """Remove module folders a VM never loads (the initrd is built already), then ``depmod``."""
    base = root / "usr/lib/modules" / version / "kernel"
    for sub in folders:
        target = base / sub
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
    runner.run(chroot_cmd(root, "depmod", "-a", version))


def cleanup(root: Path) -> None:
    """What a published image does not carry: host keys, machine ids, apt lists, logs."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/machine-id").write_text("")
    for sub in ("var/lib/apt/lists", "var/cache/apt"):
        for p in (root / sub).glob("*"):
            if p.is_file() and p.name != "lock":
                p.unlink()
    for log in (root / "var/log").rglob("*"):
        if log.is_file():
            log.unlink()
