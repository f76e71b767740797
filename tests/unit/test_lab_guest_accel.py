"""Guests inside the lab: KVM when the lab's kernel boots under it there, the site says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops.site import load_site
from kvmops_lab.guest_accel import probe_argv, probe_passed
from kvmops_lab.labsite import render_site
from kvmops_lab.qemu import CLOUD_IMAGE_SERIAL, BootSpec, qemu_argv
from kvmops_lab.state import LabState

FIXTURES = Path(__file__).parent.parent / "fixtures" / "console"


def test_probe_boots_the_kernel_under_kvm_without_initrd_and_a_panic_at_the_root_passes() -> None:
    argv = probe_argv("/boot/vmlinuz-6.1.0-50-amd64", 240)
    assert argv[:3] == ("timeout", "240", "qemu-system-x86_64")
    assert argv[argv.index("-accel") + 1] == "kvm" and "-initrd" not in argv
    assert "-no-reboot" in argv and "panic=-1" in argv[-1]
    assert probe_passed((FIXTURES / "kernel-no-initrd-panic.log").read_text(errors="replace"))
    assert not probe_passed((FIXTURES / "cloud-image-first-3s-grub.log").read_text(errors="replace"))
    assert not probe_passed("Could not access KVM kernel module: No such file or directory")


@pytest.mark.parametrize("domain_type", ["kvm", "qemu"])
def test_site_carries_the_domain_type(tmp_path: Path, domain_type: str) -> None:
    st = LabState(pid=1, port=40222, accel="tcg", image_dir=str(tmp_path), run_dir=str(tmp_path),
                  key=str(tmp_path / "k"), known_hosts=str(tmp_path / "kh"), site="s", serial="x", qmp="q",
                  started="x")  # a site's key paths are absolute
    (tmp_path / "site.toml").write_text(render_site(st, domain_type))
    assert load_site(tmp_path / "site.toml").domain_type == domain_type
    with pytest.raises(ValueError, match="kvm or qemu"):
        render_site(st, "xen")


def test_cloud_image_is_attached_read_only_with_its_serial() -> None:
    spec = BootSpec(kernel="k", initrd="i", root_disk="r", pv_disk="p", serial_log="s", pidfile="f", qmp="q",
                    port=2222, cloud_image="/c/cloud.raw")
    argv = qemu_argv(spec)
    drive = next(a for a in argv if a.startswith("file=/c/cloud.raw"))
    assert "read-only=on" in drive and "format=raw" in drive
    assert f"virtio-blk-pci,drive=cimg,serial={CLOUD_IMAGE_SERIAL}" in argv
