"""Lab tier: the realistic guest image as it lies in the lab, and the one-level boot harness's
refusal to boot a disk that libvirt runs.

That the image really works once a runbook has made a guest of it (boot, SSH with the key at
the static address, route, DNS, sudo, root's password, for setup=tweaks and setup=nocloud) is
proven by tests/lab/test_runbook_guests.py, which boots the disks guest-create wrote.
"""

from __future__ import annotations

import json

import pytest

from kvmops.cmd import change, read
from kvmops.host import Host
from kvmops_lab import guestboot as gb
from kvmops_lab import proofguest as pg
from kvmops_lab.prepare import CLOUD_IMAGE_FILE
from kvmops_lab.state import LabState

pytestmark = pytest.mark.lab

VLAN = 2368
PASSWORD = "Proof-root-7f3a"  # root's password of a throwaway guest in the lab
ADDRESS = {"offline": "10.5.68.51", "nocloud": "10.5.68.52"}
TIMES: dict[str, float] = {}


def test_the_cloud_image_is_in_the_lab_without_the_login_user(lab_host: Host) -> None:
    info = json.loads(lab_host.run(read("qemu-img", "info", "--output=json", CLOUD_IMAGE_FILE)).stdout)
    assert info["format"] == "raw" and info["virtual-size"] == 2 << 30
    assert info["actual-size"] < 1 << 30, "the copy in the lab is sparse"
    table = json.loads(lab_host.run(read("sfdisk", "-J", CLOUD_IMAGE_FILE)).stdout)["partitiontable"]
    assert table["label"] == "dos" and table["partitions"][0]["bootable"] is True
    mbr = lab_host.run(read("sh", "-c", f"head -c 512 {CLOUD_IMAGE_FILE} | grep -a -c GRUB", ok=(0, 1))).stdout
    assert mbr.strip() == "1", "GRUB's boot code is not in the MBR"
    loop = lab_host.run(change("losetup", "--find", "--show", "--read-only", CLOUD_IMAGE_FILE)).stdout.strip()
    try:
        with pg.mounted_root(lab_host, loop, "/mnt/kvmops-cloud-ro", readonly=True) as mnt:
            passwd = lab_host.run(read("cat", f"{mnt}/etc/passwd")).stdout
            cfg = lab_host.run(read("cat", f"{mnt}/etc/cloud/cloud.cfg.d/90_kvmops_image.cfg")).stdout
            fstab = lab_host.run(read("cat", f"{mnt}/etc/fstab")).stdout
            fstype = lab_host.run(read("findmnt", "-n", "-o", "FSTYPE", mnt)).stdout.strip()
    finally:
        lab_host.run(change("losetup", "-d", loop), check=False)
    assert not [ln for ln in passwd.splitlines() if ln.startswith("centos:")], "a stock image has no login user"
    assert '"name": "centos"' in cfg and fstype == "xfs" and fstab.startswith("UUID=")


def test_a_guest_that_libvirt_runs_is_refused(lab_state: LabState, lab_host: Host) -> None:
    """A domain libvirt has started (paused: it runs nothing) is never booted a second time."""
    dom, disk = "proofrun", "/tmp/kvmops-proofrun.raw"
    xml = (f"<domain type='qemu'><name>{dom}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
           f"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/>"
           "<target dev='vda' bus='virtio'/></disk></devices></domain>")
    lab_host.run(change("truncate", "-s", "1M", disk))
    lab_host.run(change("sh", "-c", "cat > /tmp/kvmops-proofrun.xml", stdin=xml))
    lab_host.run(change("virsh", "define", "/tmp/kvmops-proofrun.xml"))
    try:
        lab_host.run(change("virsh", "start", "--paused", dom))
        assert gb.domain_state(lab_host, dom) == "paused"
        with pytest.raises(gb.LabError, match="'paused' in the lab .libvirt.: a disk must not be booted twice"), \
                gb.boot_from_lab(lab_host, lab_state, dom, address="10.5.68.53", vlan=VLAN):
            pass
    finally:
        lab_host.run(change("virsh", "destroy", dom), check=False)
        lab_host.run(change("virsh", "undefine", dom), check=False)
        lab_host.run(change("rm", "-f", "/tmp/kvmops-proofrun.xml", disk), check=False)
