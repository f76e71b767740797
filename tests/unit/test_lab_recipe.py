"""The lab recipe hash keys the image cache: stable for the same recipe, new for any change."""

from __future__ import annotations

import dataclasses

from kvmops_lab.recipe import UPLINK, UPLINK_MAC, Recipe


def test_digest_is_stable() -> None:
    assert Recipe().digest == Recipe().digest
    assert len(Recipe().digest) == 64


def test_any_change_changes_the_digest() -> None:
    base = Recipe()
    changed = [
        dataclasses.replace(base, suite="trixie"),
        dataclasses.replace(base, host_packages=(*base.host_packages, "vim-tiny")),
        dataclasses.replace(base, image_size="4G"),
        dataclasses.replace(base, files={**base.files, "/etc/motd": "hi\n"}),
        dataclasses.replace(base, version=base.version + 1),
    ]
    digests = {r.digest for r in changed}
    assert base.digest not in digests
    assert len(digests) == len(changed)


def test_uplink_link_file_binds_the_fixed_mac() -> None:
    link = Recipe().files["/etc/systemd/network/10-uplink.link"]
    assert f"MACAddress={UPLINK_MAC}" in link
    assert f"Name={UPLINK}" in link
    nm = Recipe().files["/etc/NetworkManager/conf.d/90-kvmops-lab.conf"]
    assert f"no-auto-default={UPLINK_MAC}" in nm


def test_include_lists_what_a_kvm_host_needs() -> None:
    r = Recipe()
    include = r.include.split(",")
    for pkg in ("lvm2", "kpartx", "openssh-server", "linux-image-amd64", "dbus", "systemd-sysv"):
        assert pkg in include
    for pkg in ("network-manager", "libvirt-daemon-system", "qemu-system-x86", "cloud-guest-utils"):
        assert pkg in r.host_packages
