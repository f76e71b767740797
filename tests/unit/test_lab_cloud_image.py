"""The realistic guest image's recipe (pure): hashed like the lab's, shaped like GenericCloud."""

from __future__ import annotations

import dataclasses
import json
import uuid

from kvmops_lab.cloud_recipe import KERNEL_CMDLINE, LOGIN_USER, CloudRecipe, fstab, grub_cfg


def test_digest_is_stable_and_any_change_changes_it() -> None:
    base = CloudRecipe()
    assert base.digest == CloudRecipe().digest and len(base.digest) == 64
    changed = [
        dataclasses.replace(base, suite="trixie"),
        dataclasses.replace(base, image_packages=(*base.image_packages, "vim-tiny")),
        dataclasses.replace(base, disk_size="3G"),
        dataclasses.replace(base, files={**base.files, "/etc/motd": "hi\n"}),
        dataclasses.replace(base, version=base.version + 1),
    ]
    digests = {r.digest for r in changed}
    assert base.digest not in digests and len(digests) == len(changed)


def test_the_fs_uuid_follows_the_recipe() -> None:
    a, b = CloudRecipe(), CloudRecipe(disk_size="3G")
    assert uuid.UUID(a.fs_uuid) and a.fs_uuid == CloudRecipe().fs_uuid and a.fs_uuid != b.fs_uuid


def test_boot_config_is_genericcloud_like() -> None:
    r = CloudRecipe()
    cfg = grub_cfg(r.fs_uuid, "6.1.0-50-amd64")
    assert f"search --no-floppy --fs-uuid --set=root {r.fs_uuid}" in cfg
    assert f"linux /boot/vmlinuz-6.1.0-50-amd64 root=UUID={r.fs_uuid} ro {KERNEL_CMDLINE}" in cfg
    assert "console=ttyS0,115200n8" in KERNEL_CMDLINE and "net.ifnames=0" in KERNEL_CMDLINE
    assert "terminal_output serial console" in cfg
    assert fstab(r.fs_uuid) == f"UUID={r.fs_uuid} / xfs defaults 0 0\n"
    assert f'GRUB_CMDLINE_LINUX="{KERNEL_CMDLINE}"' in r.files["/etc/default/grub"]


def test_packages_are_those_of_a_cloud_image() -> None:
    r = CloudRecipe()
    for pkg in ("linux-image-amd64", "grub-pc-bin", "xfsprogs", "network-manager", "openssh-server", "sudo",
                "cloud-init", "qemu-guest-agent", "cloud-guest-utils"):
        assert pkg in r.image_packages
    assert "systemd-sysv" in r.include.split(",")


def test_cloud_init_names_rhels_default_user_but_the_image_has_no_such_user() -> None:
    r = CloudRecipe()
    cfg = json.loads(r.files["/etc/cloud/cloud.cfg.d/90_kvmops_image.cfg"].split("\n", 1)[1])
    user = cfg["system_info"]["default_user"]
    assert user["name"] == LOGIN_USER == "centos"
    assert user["groups"] == ["wheel", "adm", "systemd-journal"] and user["shell"] == "/bin/bash"
    assert user["sudo"] == ["ALL=(ALL) NOPASSWD:ALL"] and user["lock_passwd"] is True
    assert cfg["datasource_list"][0] == "NoCloud"
    assert cfg["system_info"]["network"]["renderers"][0] == "network-manager"
    assert not any(LOGIN_USER in name for name in r.files), "no file of the login user in the image"
    assert "/etc/passwd" not in r.files


def test_sshd_nm_journal_and_sudo_settings() -> None:
    f = CloudRecipe().files
    assert "PasswordAuthentication no" in f["/etc/ssh/sshd_config.d/50-cloud-image.conf"]
    assert "ssh-keygen -A" in f["/etc/systemd/system/ssh.service.d/10-keygen.conf"]
    assert f["/etc/NetworkManager/conf.d/00-keyfile.conf"] == "[main]\nplugins=keyfile\n"
    assert "Storage=persistent" in f["/etc/systemd/journald.conf.d/10-persistent.conf"]
    assert f["/etc/sudoers.d/10-wheel"] == "%wheel ALL=(ALL) ALL\n"
    assert "MODULES=list" in f["/etc/initramfs-tools/conf.d/90-kvmops.conf"]
    assert f["/etc/machine-id"] == ""
