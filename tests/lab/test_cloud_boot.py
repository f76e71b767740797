"""Lab tier: the realistic guest image really works, proven with the one-level boot harness.

A guest is made from the image WITHOUT kvmops' runbooks (:mod:`kvmops_lab.proofguest`: the
image copied onto a lab LV; ``offline``: a small offline step of its own, ``nocloud``: a
NoCloud seed for cloud-init; a domain like the guide's template, defined, not started).
:func:`kvmops_lab.guestboot.boot_from_lab` then boots that LV here (one level of TCG, the disk
over NBD from the lab, the VLAN played by QEMU's user network).

Asserted from outside the guest: the login prompt on ttyS0; root's password on the console
(and a wrong one refused); SSH with the key at the static address; the address, the default
route via .254 and the DNS server; ``sudo -n true``; ``df /``; the journal and os-release;
with nocloud, the login user cloud-init made (RHEL's default user of the image's cloud.cfg).
After power-off the guest's journal is on the LV, and nothing is left running.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(params=["offline", "nocloud"])
def guest(request: pytest.FixtureRequest, lab_host: Host, tmp_path: Path) -> Iterator[pg.ProofGuest]:
    setup = str(request.param)
    key = tmp_path / "id_proof"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kvmops-proof", "-f", str(key)], check=True)
    t0 = time.monotonic()
    g = pg.create(lab_host, f"proof{setup[:3]}", setup, vlan=VLAN, address=ADDRESS[setup], key=key,
                  password=PASSWORD)
    TIMES[f"{setup}: LV, image copy, setup, define"] = time.monotonic() - t0
    try:
        yield g
    finally:
        pg.remove(lab_host, g)


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


def test_the_image_boots_and_works(lab_state: LabState, lab_host: Host, guest: pg.ProofGuest) -> None:
    login, setup = guest.login, guest.setup
    t0 = time.monotonic()
    with gb.boot_from_lab(lab_host, lab_state, guest.name, address=guest.address, vlan=VLAN, say=print) as g:
        verdict = g.wait_for_login(420)
        assert verdict.booted, verdict.message + "\n" + g.console()[-3000:]
        ssh_s = g.wait_for_ssh(login, 300)
        if setup == "nocloud":  # its first boot ends when cloud-init has (it restarts sshd on the way)
            status = gb.cloud_init_status(g, login)
            assert "status: done" in status, status
        assert gb.addresses(g, login) == [f"{guest.address}/24"]
        assert gb.default_gateway(g, login) == "10.5.68.254"
        dns = gb.dns_servers(g, login)
        assert pg.DNS in dns.nm and pg.DNS in dns.resolv_conf, dns
        assert gb.sudo_works(g, guest.sudo_login)
        assert 1.8 * 2**30 < gb.root_fs_bytes(g, login) < 2 * 2**30
        assert "ID=debian" in gb.read_file(g, login, "/etc/os-release")
        assert gb.journal(g, login, 5).strip()
        if setup == "nocloud":
            passwd = gb.read_file(g, login, "/etc/passwd")
            assert any(ln.startswith("centos:") and ln.endswith(":/bin/bash") for ln in passwd.splitlines())
            assert {"wheel", "adm", "systemd-journal"} <= set(g.ssh(login, "id", "-nG").stdout.split())
        assert g.console_run("root", PASSWORD, "id -u").strip().splitlines()[-1] == "0"
        with pytest.raises(gb.LoginFailed):
            g.console_run("root", PASSWORD + "-wrong", "true", timeout=60)
        machine_id = gb.read_file(g, login, "/etc/machine-id").strip()
        TIMES[f"{setup}: qemu start to login prompt"] = verdict.seconds
        TIMES[f"{setup}: qemu start to ssh"] = ssh_s
    TIMES[f"{setup}: whole boot session"] = time.monotonic() - t0
    print("\ncloud boot timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in TIMES.items()))
    assert gb.domain_state(lab_host, guest.name) == "shut off"
    attr = lab_host.run(read("lvs", "--noheadings", "-o", "lv_attr", guest.disk)).stdout
    assert not gb.lv_is_open(attr), "the NBD export still holds the LV"
    assert not g.workdir.exists() and g.proc.poll() is not None
    assert "system.journal" in pg.journal_files(lab_host, guest, machine_id), "the guest's writes are not on the LV"


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
