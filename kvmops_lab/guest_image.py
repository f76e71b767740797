"""A small guest cloud image for the lab: a partitioned raw disk that boots to a serial console.

Layout (``guest.raw``, 64 MiB, sparse): a DOS label with one bootable partition (ext4) holding a
busybox root, the lab's Debian kernel and a tiny
initramfs (:mod:`kvmops_lab.initramfs`: busybox and the virtio/ext4 modules taken from the lab
image, ~2.5 MB; the Debian initrd of 39 MB never finished unpacking under nested emulation) in
/boot, and extlinux as boot loader. ``/etc/passwd`` has the images' login user ``centos``.
It prints ``kvmops-guest: booted <hostname>`` on ttyS0 when its init has run.

Built on this machine (root: loop device, ``partx -a``, mount), cached by recipe hash::

    truncate -s 64M guest.raw; sfdisk guest.raw <<< ',,L,*'
    losetup --find --show guest.raw; partx -a /dev/loopN; mkfs.ext4 -L root -O ^64bit /dev/loopNp1
    mount /dev/loopNp1 MNT; cp -a STAGING/. MNT; extlinux --install MNT/boot/extlinux
    umount MNT; partx -d /dev/loopN; losetup -d /dev/loopN
    dd if=/usr/lib/syslinux/mbr/mbr.bin of=guest.raw bs=440 count=1 conv=notrunc

The initramfs's modules come from the lab image (``mount -o ro,loop,noload root.img``).

Public API: :func:`ensure_guest_image` -> Path of ``guest.raw``; ``IMAGE_MIB``; ``BOOT_BANNER``;
``IN_LAB_DEVICE`` (the image as a read-only disk inside a running lab) and ``IN_LAB_FILE``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from kvmops.cmd import change, read
from kvmops.runners import LocalRunner
from kvmops_lab import initramfs
from kvmops_lab.build import build_lock, ensure_image, safe_rmtree
from kvmops_lab.errors import LabError
from kvmops_lab.loopdisk import mounted, partition
from kvmops_lab.paths import ImagePaths, LabPaths
from kvmops_lab.progress import Phases
from kvmops_lab.qemu import GUEST_IMAGE_SERIAL

# Small: every move, backup and restore of it in the lab streams all of it through SSH between
# two emulated hosts (~3 MiB/s). So its root is ext4, not the guide's xfs, which refuses
# filesystems of 300 MiB and less (the realistic cloud image keeps xfs: kvmops_lab.cloud_image).
IMAGE_MIB = 64
IMAGE_SIZE = f"{IMAGE_MIB}M"
BUSYBOX = "/bin/busybox"
MBR = "/usr/lib/syslinux/mbr/mbr.bin"
EXTLINUX_MODULES = Path("/usr/lib/syslinux/modules/bios")
BOOT_BANNER = "kvmops-guest: booted"
IN_LAB_DEVICE = f"/dev/disk/by-id/virtio-{GUEST_IMAGE_SERIAL}"  # see prepare.py
IN_LAB_FILE = "/var/lib/kvmops/images/guest.raw"
GUEST_VERSION = 3
# The kernel's messages stay off the serial console (warnings still show): inside the lab each
# byte on it is an exit to the lab's QEMU, all emulated; booting quiet takes ~20 % less
# (bench/lab_nested_boot.py: kvm vs kvm-quiet).
KERNEL_QUIET = "quiet"


def guest_files() -> dict[str, str]:
    """The text files of the guest root: path -> content."""
    return {
        "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
                       "centos:x:1000:1000:Cloud User:/home/centos:/bin/sh\n",
        "/etc/group": "root:x:0:\nwheel:x:10:centos\ncentos:x:1000:\n",
        "/etc/shadow": "root:*:19000:0:99999:7:::\ncentos:!!:19000:0:99999:7:::\n",
        "/etc/hostname": "kvmops-guest\n",
        "/etc/os-release": 'NAME="kvmops guest"\nID=kvmops-guest\nVERSION_ID="1"\n',
        "/etc/fstab": "LABEL=root / ext4 defaults 0 0\n",
        "/etc/inittab": "::sysinit:/etc/init.d/rcS\n"
                        "ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100\n"
                        "::ctrlaltdel:/sbin/reboot\n::shutdown:/bin/umount -a -r\n",
        "/etc/init.d/rcS": "#!/bin/sh\n"
                           "mount -t proc proc /proc 2>/dev/null\n"
                           "mount -t sysfs sys /sys 2>/dev/null\n"
                           "mount -t devtmpfs dev /dev 2>/dev/null\n"
                           "mount -o remount,rw /\n"
                           "hostname -F /etc/hostname\n"
                           "ip link set lo up\n"
                           f'echo "{BOOT_BANNER} $(hostname)" > /dev/ttyS0\n',
        "/boot/extlinux/extlinux.conf": "DEFAULT linux\nTIMEOUT 1\nPROMPT 0\nSERIAL 0 115200\n"
                                        "LABEL linux\n  KERNEL /boot/vmlinuz\n  INITRD /boot/initrd.img\n"
                                        f"  APPEND root=LABEL=root rw console=ttyS0,115200 panic=30 {KERNEL_QUIET}\n",
    }


def guest_digest(img: ImagePaths) -> str:
    """Hash of the guest recipe: its files, size, the lab kernel and this machine's busybox."""
    kernel = (img.dir / "kernel-version").read_text().strip()
    busybox = hashlib.sha256(Path(BUSYBOX).read_bytes()).hexdigest() if Path(BUSYBOX).exists() else "-"
    tiny = [list(initramfs.ROOT_MODULES), initramfs.init_script(initramfs.ROOT_MODULES)]
    blob = json.dumps([GUEST_VERSION, IMAGE_SIZE, guest_files(), kernel, busybox, tiny], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def ensure_guest_image(paths: LabPaths | None = None, say: Phases | None = None) -> Path:
    """The cached ``guest.raw`` (built first when missing or half-built)."""
    paths = paths or LabPaths.default()
    say = say or Phases()
    img = ensure_image(paths, say=say)
    _need_tools()
    folder = paths.guest_dir(guest_digest(img))
    raw, marker = folder / "guest.raw", folder / "COMPLETE"
    if marker.exists():
        say(f"guest image: cached {raw}")
        return raw
    with build_lock(paths, say):
        if marker.exists():
            return raw
        if folder.exists():
            say(f"guest image: {folder} is half-built (no COMPLETE marker): rebuilding")
            safe_rmtree(folder)
        folder.mkdir(parents=True)
        t0 = say.elapsed
        say(f"guest image: building {raw} ({IMAGE_SIZE}, ext4, busybox root, extlinux)")
        build_guest_image(raw, img)
        marker.write_text(f"built in {say.elapsed - t0:.0f}s\n")
        say(f"guest image: built in {say.elapsed - t0:.0f}s")
    for other in paths.root.glob("guest-*"):
        if other != folder:
            safe_rmtree(other)
    return raw


def _need_tools() -> None:
    need = {"busybox-static": BUSYBOX, "syslinux-common": MBR, "extlinux": shutil.which("extlinux"),
            "e2fsprogs": shutil.which("mkfs.ext4"), "fdisk": shutil.which("sfdisk")}
    missing = [pkg for pkg, path in need.items() if not path or not Path(path).exists()]
    if missing:
        raise LabError(f"the guest image needs {', '.join(missing)}: apt-get install {' '.join(missing)}")
    if os.geteuid() != 0:
        raise LabError("building the guest image needs root (loop device, mount)")


def build_guest_image(raw: Path, img: ImagePaths) -> None:
    runner = LocalRunner()
    with tempfile.TemporaryDirectory(prefix="kvmops-guest-") as tmp:
        staging = Path(tmp) / "root"
        with mounted(runner, str(img.root), Path(tmp) / "lab", options="ro,loop,noload") as lab_root:
            stage_root(staging, img, lab_root)
        runner.run(change("truncate", "-s", IMAGE_SIZE, str(raw)))
        runner.run(change("sfdisk", "--quiet", "--label", "dos", str(raw), stdin=",,L,*\n"))
        with partition(runner, raw) as part:
            # without 64bit: extlinux reads ext4 without it, and a 64 MiB disk does not need it
            runner.run(change("mkfs.ext4", "-q", "-L", "root", "-O", "^64bit", part))
            with mounted(runner, part, Path(tmp) / "mnt") as mnt:
                runner.run(change("cp", "-a", f"{staging}/.", str(mnt)))
                runner.run(change("extlinux", "--install", str(mnt / "boot/extlinux")))
        runner.run(change("dd", f"if={MBR}", f"of={raw}", "bs=440", "count=1", "conv=notrunc",
                          "status=none"))


def stage_root(root: Path, img: ImagePaths, lab_root: Path) -> None:
    """busybox and its applet links, the text files, the kernel, the tiny initramfs (modules
    from the lab image mounted at ``lab_root``) and extlinux's modules."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "proc", "sys", "dev", "run",
              "tmp", "root", "home/centos", "boot/extlinux", "var/log"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    applets = LocalRunner().run(read(BUSYBOX, "--list-full")).stdout.split()
    for applet in applets:
        link = root / applet
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    for name, content in guest_files().items():
        (root / name.lstrip("/")).write_text(content)
    (root / "etc/init.d/rcS").chmod(0o755)
    (root / "etc/shadow").chmod(0o600)
    os.chown(root / "home/centos", 1000, 1000)
    shutil.copyfile(img.kernel, root / "boot/vmlinuz")
    version = (img.dir / "kernel-version").read_text().strip()
    modules = lab_root / "lib/modules" / version
    (root / "boot/initrd.img").write_bytes(initramfs.build(modules, Path(BUSYBOX)))
    for mod in ("ldlinux.c32",):
        if (EXTLINUX_MODULES / mod).exists():
            shutil.copyfile(EXTLINUX_MODULES / mod, root / "boot/extlinux" / mod)
