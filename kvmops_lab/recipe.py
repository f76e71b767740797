"""What the lab image is made of (pure). Its hash keys the cache: change anything here and
the next ``kvmops lab up`` rebuilds the image; change nothing and it is reused."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

UPLINK = "ens802f1"
UPLINK_MAC = "52:54:00:6b:76:f1"
ADMIN_NIC = "lab0"
ADMIN_MAC = "52:54:00:6b:76:01"
HOSTNAME = "kvmlab"
RECIPE_VERSION = 4  # bump when the build steps in build.py change meaning

# debootstrap --include: what a minbase system needs to boot and be reached.
BASE_PACKAGES = (
    "systemd-sysv", "udev", "kmod", "dbus", "libpam-systemd", "linux-image-amd64",
    "initramfs-tools", "iproute2", "openssh-server", "sudo", "python3",
    "lvm2", "kpartx", "e2fsprogs", "xfsprogs", "fdisk",
)
# apt-get install --no-install-recommends in the chroot: what a KVM host carries.
HOST_PACKAGES = (
    "network-manager", "libvirt-daemon-system", "libvirt-clients", "qemu-system-x86",
    "qemu-utils", "cloud-guest-utils", "parted", "dosfstools", "genisoimage", "less",
    # a Rocky host has it; kvmops writes NoCloud seeds with `openssl base64 -d`
    "openssl",
    # lv-backup's engine runs on the host (kvmops.transfer.engine): the backup lab proof
    "borgbackup",
)


def _files() -> dict[str, str]:
    """Files written into the root filesystem: path -> content."""
    return {
        "/etc/hostname": f"{HOSTNAME}\n",
        "/etc/hosts": f"127.0.0.1 localhost\n127.0.1.1 {HOSTNAME}\n",
        "/etc/fstab": "/dev/vda / ext4 defaults,errors=remount-ro 0 1\n",
        # The site's uplink name, bound to the fixed MAC of the second NIC.
        "/etc/systemd/network/10-uplink.link": (
            f"[Match]\nMACAddress={UPLINK_MAC}\n\n[Link]\nName={UPLINK}\n"
        ),
        "/etc/systemd/network/10-admin.link": (
            f"[Match]\nMACAddress={ADMIN_MAC}\n\n[Link]\nName={ADMIN_NIC}\n"
        ),
        # NetworkManager: DHCP on the admin NIC only; the uplink is left for the runbooks.
        "/etc/NetworkManager/conf.d/90-kvmops-lab.conf": (
            f"[main]\nno-auto-default={UPLINK_MAC}\n\n[connectivity]\nenabled=false\n"
        ),
        "/etc/NetworkManager/system-connections/lab0.nmconnection": (
            "[connection]\nid=lab0\ntype=ethernet\ninterface-name=lab0\nautoconnect=true\n\n"
            "[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=disabled\n"
        ),
        "/etc/ssh/sshd_config.d/kvmops-lab.conf": (
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
        ),
        # Plenty of room for the guests' serial logs; a quiet console for the boot log.
        "/etc/sysctl.d/90-kvmops-lab.conf": "kernel.printk = 4 4 1 7\n",
        "/etc/modules-load.d/kvmops-lab.conf": "dm_mod\ndm_snapshot\n8021q\n",
    }


# Units that only slow a throwaway VM's boot down.
MASKED_UNITS = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer", "e2scrub_all.timer",
    "e2scrub_reap.service", "fstrim.timer", "systemd-networkd-wait-online.service",
    "NetworkManager-wait-online.service",
)


@dataclass(frozen=True)
class Recipe:
    """The lab image: suite, mirror, packages, files, size. ``digest`` keys the cache."""

    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    variant: str = "minbase"
    base_packages: tuple[str, ...] = BASE_PACKAGES
    host_packages: tuple[str, ...] = HOST_PACKAGES
    files: dict[str, str] = field(default_factory=_files)
    masked_units: tuple[str, ...] = MASKED_UNITS
    image_size: str = "3G"
    version: int = RECIPE_VERSION

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
