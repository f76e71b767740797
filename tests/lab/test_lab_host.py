"""The lab looks like the guide's host: uplink name, VG, device-mapper, VLANs, libvirt,
and the guest cloud image is there to copy."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

import kvmops_lab as lab
from kvmops.cmd import change, read
from kvmops.host import Host
from kvmops.lvm.facts import parse_vgs, vgs_cmd
from kvmops_lab.guest_image import BOOT_BANNER, IMAGE_MIB, ensure_guest_image
from kvmops_lab.prepare import GUEST_IMAGE_FILE
from kvmops_lab.recipe import UPLINK_MAC
from kvmops_lab.state import LabState

pytestmark = pytest.mark.lab


def test_uplink_has_the_sites_name_and_fixed_mac(lab_host: Host) -> None:
    out = lab_host.run(read("ip", "-j", "link", "show", lab_host.site.uplink)).stdout
    (link,) = json.loads(out)
    assert link["ifname"] == "ens802f1" and link["address"] == UPLINK_MAC


def test_vg_rl_build_is_ready(lab_host: Host) -> None:
    (vg,) = [v for v in parse_vgs(lab_host.run(vgs_cmd()).stdout) if v.name == "rl_build"]
    assert vg.size >= 19 << 30


def test_a_vlan_subinterface_works_in_the_lab(lab_host: Host) -> None:
    name = "ens802f1.3999"
    lab_host.run(change("ip", "link", "add", "link", "ens802f1", "name", name, "type", "vlan", "id", "3999"))
    try:
        (link,) = json.loads(lab_host.run(read("ip", "-j", "-d", "link", "show", name)).stdout)
        assert link["linkinfo"]["info_kind"] == "vlan" and link["linkinfo"]["info_data"]["id"] == 3999
    finally:
        lab_host.run(change("ip", "link", "del", name))


def test_up_again_reuses_the_running_lab(lab_state: LabState) -> None:
    """The lab as it runs now (the power-cut proof boots the session's lab again: a new QEMU)."""
    now = lab.status().state
    said: list[str] = []
    again = lab.up(say=said.append)
    assert now is not None and again == now
    assert any("reusing it" in s for s in said)


def test_guest_image_is_copied_into_the_lab_and_has_centos(lab_host: Host) -> None:
    size = lab_host.run(read("stat", "-c", "%s", GUEST_IMAGE_FILE)).stdout.strip()
    assert int(size) == IMAGE_MIB << 20
    table = json.loads(lab_host.run(read("sfdisk", "-J", GUEST_IMAGE_FILE)).stdout)["partitiontable"]
    assert table["label"] == "dos" and len(table["partitions"]) == 1
    loop = lab_host.run(change("losetup", "--find", "--show", "--read-only", GUEST_IMAGE_FILE)).stdout.strip()
    mnt = "/mnt/kvmops-guest-test"
    try:
        lab_host.run(change("kpartx", "-a", "-r", loop))
        part = f"/dev/mapper/{loop.rsplit('/', 1)[1]}p1"
        lab_host.run(change("mkdir", "-p", mnt))
        lab_host.run(change("mount", "-o", "ro", part, mnt))
        try:
            passwd = lab_host.run(read("cat", f"{mnt}/etc/passwd")).stdout
            assert any(line.startswith("centos:") for line in passwd.splitlines())
            fstype = lab_host.run(read("findmnt", "-n", "-o", "FSTYPE", mnt)).stdout.strip()
            assert fstype == "ext4"
        finally:
            lab_host.run(change("umount", mnt))
    finally:
        lab_host.run(change("kpartx", "-d", loop), check=False)
        lab_host.run(change("losetup", "-d", loop), check=False)


def test_guest_image_boots_to_its_serial_console(tmp_path: Path) -> None:
    """The guest image boots from its own disk (BIOS, extlinux) under TCG on this machine."""
    image = ensure_guest_image()
    log = tmp_path / "serial.log"
    proc = subprocess.Popen(
        ["qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-smp", "1",
         "-drive", f"file={image},format=raw,if=virtio,snapshot=on",
         "-display", "none", "-vga", "none", "-no-reboot", "-serial", f"file:{log}", "-nic", "none"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and BOOT_BANNER in log.read_text(errors="replace"):
                break
            time.sleep(2)
        text = log.read_text(errors="replace") if log.exists() else ""
        assert f"{BOOT_BANNER} kvmops-guest" in text, text[-2000:]
    finally:
        proc.kill()
        proc.wait()
