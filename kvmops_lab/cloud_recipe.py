"""What the realistic guest image is made of (pure): a Debian bookworm disk in the shape of a
RHEL-family GenericCloud image as the guide uses it. Its hash keys the cache.

The shape, and why each part is there:

- a raw disk with a DOS partition table, the root filesystem xfs on partition 1 (found by
  UUID in fstab), GRUB (i386-pc) in the MBR gap, a kernel line with
  ``console=ttyS0,115200n8 net.ifnames=0`` (so the NIC is ``eth0`` as in the guide's nmcli
  example, and systemd-getty-generator puts a getty on ttyS0);
- systemd, NetworkManager with keyfiles only (no connection made in advance: NM's own
  "Wired connection" DHCP default, as on a stock image), openssh-server (host keys made at
  first boot, password logins off), sudo with RHEL's ``%wheel`` rule, qemu-guest-agent;
- cloud-init with NoCloud in its datasource list and RHEL's default user (the login user,
  groups wheel/adm/systemd-journal, passwordless sudo). Like a stock GenericCloud image, the
  image does NOT contain that user: cloud-init makes it on first boot when it finds a
  datasource; without one (ds-identify finds none) cloud-init stays off;
- a persistent journal (``/var/log/journal``) so the logs can be read offline from the disk;
- root's password locked; ``/etc/machine-id`` empty (made at first boot).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field

CLOUD_VERSION = 1  # bump when the build steps in cloud_image.py change meaning
LOGIN_USER = "centos"
HOSTNAME = "localhost"
# What GenericCloud's kernel line has (crashkernel left out), plus a fast timeout.
KERNEL_CMDLINE = "console=tty0 console=ttyS0,115200n8 no_timer_check net.ifnames=0"

# debootstrap --include (minbase): what boots and what everything else needs.
BASE_PACKAGES = (
    "systemd-sysv", "udev", "kmod", "dbus", "libpam-systemd", "initramfs-tools", "zstd",
    "iproute2", "iputils-ping", "procps", "less", "passwd", "login",
)
# apt-get install --no-install-recommends in the chroot: the cloud image's own packages.
IMAGE_PACKAGES = (
    "linux-image-amd64", "grub-pc-bin", "grub2-common", "xfsprogs", "network-manager",
    "openssh-server", "sudo", "cloud-init", "cloud-guest-utils", "qemu-guest-agent",
    # the hostname resolves without /etc/hosts (RHEL: `hosts: files dns myhostname`), so sudo
    # does not complain about a hostname cloud-init set
    "libnss-myhostname",
)
# Module folders a VM never loads, removed like RHEL's split of kernel-core (what its cloud
# images carry) from kernel-modules. Debian's smaller cloud kernel is not used: it has no AHCI,
# so it cannot see the guide's SATA CD-ROM that holds the NoCloud seed.
PRUNED_MODULES = (
    "drivers/gpu", "drivers/media", "drivers/net/wireless", "drivers/infiniband", "drivers/staging",
    "drivers/bluetooth", "drivers/iio", "drivers/isdn", "drivers/comedi", "drivers/mtd", "drivers/hwmon",
    "drivers/usb/gadget", "drivers/net/ethernet", "drivers/net/can", "drivers/net/usb", "drivers/video",
    "drivers/input/touchscreen", "drivers/input/joystick", "drivers/platform/x86", "drivers/nfc",
    "drivers/scsi/lpfc", "drivers/scsi/qla2xxx", "drivers/scsi/mpt3sas", "drivers/scsi/megaraid",
    "sound", "net/wireless", "net/mac80211", "net/bluetooth",
)
# initramfs-tools with MODULES=list: what finds and mounts the root, and the SATA CD-ROM: the
# NoCloud seed must be a block device before systemd's generators run (cloud-init's
# ds-identify looks for the "cidata" label then; RHEL's kernel has AHCI built in).
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "virtio_scsi", "xfs", "crc32c_generic", "ahci", "sr_mod")
# Timers and waits that only slow a throwaway guest down (GenericCloud keeps them; they do not
# change what the proof shows: login, network, sudo, logs).
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer", "e2scrub_all.timer",
                "e2scrub_reap.service", "fstrim.timer")


def _cloud_cfg(login_user: str) -> str:
    """cloud.cfg.d drop-in: datasources, RHEL's default user, NetworkManager as renderer."""
    doc = {
        "datasource_list": ["NoCloud", "None"],
        "disable_root": True,
        "ssh_pwauth": False,
        "ssh_deletekeys": True,
        "ssh_genkeytypes": ["rsa", "ecdsa", "ed25519"],
        # a locale the image has (Debian's cloud-init would set en_US.UTF-8, not generated here)
        "locale": "C.UTF-8",
        "system_info": {
            "default_user": {
                "name": login_user, "lock_passwd": True, "gecos": "Cloud User",
                "groups": ["wheel", "adm", "systemd-journal"],
                "sudo": ["ALL=(ALL) NOPASSWD:ALL"], "shell": "/bin/bash",
            },
            "network": {"renderers": ["network-manager", "networkd"]},
        },
    }
    return "# kvmops cloud image: like a RHEL GenericCloud image's cloud.cfg\n" + json.dumps(doc, indent=1) + "\n"


def _files(login_user: str) -> dict[str, str]:
    """Files written into the image after the packages are in: path -> content."""
    return {
        "/etc/hostname": f"{HOSTNAME}\n",
        "/etc/hosts": "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
        "/etc/resolv.conf": "",
        "/etc/machine-id": "",
        "/etc/default/grub": (
            "GRUB_DEFAULT=0\nGRUB_TIMEOUT=1\nGRUB_DISTRIBUTOR=Debian\n"
            f'GRUB_CMDLINE_LINUX="{KERNEL_CMDLINE}"\nGRUB_CMDLINE_LINUX_DEFAULT=""\n'
            'GRUB_TERMINAL="serial console"\nGRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"\n'
            "GRUB_DISABLE_OS_PROBER=true\n"
        ),
        "/etc/NetworkManager/conf.d/00-keyfile.conf": "[main]\nplugins=keyfile\n",
        "/etc/ssh/sshd_config.d/50-cloud-image.conf": "PasswordAuthentication no\nUseDNS no\n",
        # RHEL makes missing host keys before sshd starts (sshd-keygen@); Debian relies on the
        # package's postinst, whose keys we removed: make them at boot, before `sshd -t`.
        "/etc/systemd/system/ssh.service.d/10-keygen.conf": (
            "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n"
        ),
        "/etc/sudoers.d/10-wheel": "%wheel ALL=(ALL) ALL\n",
        "/etc/cloud/cloud.cfg.d/90_kvmops_image.cfg": _cloud_cfg(login_user),
        "/etc/systemd/journald.conf.d/10-persistent.conf": "[Journal]\nStorage=persistent\n",
        "/etc/initramfs-tools/conf.d/90-kvmops.conf": "MODULES=list\nCOMPRESS=zstd\n",
        "/etc/initramfs-tools/modules": "".join(m + "\n" for m in INITRAMFS_MODULES),
        "/etc/kernel-img.conf": "do_symlinks = yes\nlink_in_boot = no\n",
    }


def grub_cfg(fs_uuid: str, kernel_version: str, cmdline: str = KERNEL_CMDLINE) -> str:
    """A static ``/boot/grub/grub.cfg``: serial and screen, one entry, root by UUID.

    Written by hand (not ``grub-mkconfig``) because the build machine has no udev, so
    ``/dev/disk/by-uuid`` is empty there and grub-mkconfig would write ``root=/dev/loopNp1``.
    ``/etc/default/grub`` says the same, so a later grub-mkconfig in the guest agrees.
    """
    return (
        "serial --unit=0 --speed=115200\n"
        "terminal_input serial console\nterminal_output serial console\n"
        "set default=0\nset timeout=1\n"
        "insmod part_msdos\ninsmod xfs\n"
        f"search --no-floppy --fs-uuid --set=root {fs_uuid}\n"
        "menuentry 'Debian GNU/Linux (kvmops cloud image)' {\n"
        f"  linux /boot/vmlinuz-{kernel_version} root=UUID={fs_uuid} ro {cmdline}\n"
        f"  initrd /boot/initrd.img-{kernel_version}\n"
        "}\n"
    )


def fstab(fs_uuid: str) -> str:
    return f"UUID={fs_uuid} / xfs defaults 0 0\n"


@dataclass(frozen=True)
class CloudRecipe:
    """The realistic guest image: suite, mirror, packages, files, disk size; ``digest`` keys the cache."""

    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    base_packages: tuple[str, ...] = BASE_PACKAGES
    image_packages: tuple[str, ...] = IMAGE_PACKAGES
    login_user: str = LOGIN_USER
    files: dict[str, str] = field(default_factory=lambda: _files(LOGIN_USER))
    masked_units: tuple[str, ...] = MASKED_UNITS
    pruned_modules: tuple[str, ...] = PRUNED_MODULES
    disk_size: str = "2G"
    version: int = CLOUD_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @property
    def digest(self) -> str:
        """sha256 of the whole recipe (file contents included)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @property
    def include(self) -> str:
        """The ``--include=`` value of debootstrap."""
        return ",".join(self.base_packages)

    @property
    def fs_uuid(self) -> str:
        """The root filesystem's UUID, derived from the recipe: the same recipe, the same UUID."""
        return str(uuid.UUID(self.digest[:32]))
