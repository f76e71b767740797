"""QEMU's argv for the lab (pure): disks, NICs, SSH forward, accelerator, daemon files."""

from __future__ import annotations

import pytest

from kvmops_lab.qemu import TCG_CPU, BootSpec, Tuning, probe_argv, probe_ok, qemu_argv
from kvmops_lab.recipe import ADMIN_MAC, UPLINK_MAC

SPEC = BootSpec(kernel="/c/vmlinuz", initrd="/c/initrd.img", root_disk="/r/root-overlay.qcow2",
                pv_disk="/r/pv.qcow2", serial_log="/r/serial.log", pidfile="/r/qemu.pid",
                qmp="/r/qmp.sock", port=2222)


def opt(argv: tuple[str, ...], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_tcg_default_with_modest_resources() -> None:
    argv = qemu_argv(SPEC)
    assert argv[0] == "qemu-system-x86_64"
    assert opt(argv, "-accel") == ["tcg"]
    assert opt(argv, "-m") == ["1536"] and opt(argv, "-smp") == ["2"]
    assert "-no-reboot" in argv and "-daemonize" in argv
    assert opt(argv, "-pidfile") == ["/r/qemu.pid"]
    assert opt(argv, "-serial") == ["file:/r/serial.log"]
    assert opt(argv, "-qmp") == ["unix:/r/qmp.sock,server=on,wait=off"]


def test_kernel_boots_root_on_vda_with_serial_console() -> None:
    argv = qemu_argv(SPEC)
    assert opt(argv, "-kernel") == ["/c/vmlinuz"] and opt(argv, "-initrd") == ["/c/initrd.img"]
    append = opt(argv, "-append")[0].split()
    assert "root=/dev/vda" in append and "console=ttyS0,115200" in append


def test_disks_root_first_then_pv_with_serials() -> None:
    argv = qemu_argv(SPEC)
    drives = opt(argv, "-drive")
    assert drives[0].startswith("file=/r/root-overlay.qcow2,format=qcow2")
    assert drives[1].startswith("file=/r/pv.qcow2,format=qcow2")
    assert "virtio-blk-pci,drive=pv,serial=kvmops-pv" in opt(argv, "-device")
    assert len(drives) == 2


def test_guest_image_is_attached_read_only() -> None:
    argv = qemu_argv(BootSpec(**{**SPEC.__dict__, "guest_image": "/g/guest.raw"}))
    third = opt(argv, "-drive")[2]
    assert third.startswith("file=/g/guest.raw,format=raw") and "read-only=on" in third


def test_ssh_forward_only_on_loopback_and_nothing_leaves() -> None:
    argv = qemu_argv(SPEC)
    nets = opt(argv, "-netdev")
    assert nets[0] == "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22"
    assert nets[1] == "user,id=n1,restrict=on"
    devices = opt(argv, "-device")
    assert f"virtio-net-pci,netdev=n0,mac={ADMIN_MAC}" in devices
    assert f"virtio-net-pci,netdev=n1,mac={UPLINK_MAC}" in devices


def test_kvm_uses_host_cpu() -> None:
    argv = qemu_argv(BootSpec(**{**SPEC.__dict__, "accel": "kvm"}))
    assert opt(argv, "-accel") == ["kvm"] and opt(argv, "-cpu") == ["host"]


@pytest.mark.parametrize(("field", "value"), [("accel", "hvf"), ("port", 0), ("port", 70000)])
def test_bad_spec_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError):
        BootSpec(**{**SPEC.__dict__, field: value})


def test_probe_boots_kvm_and_stops_on_panic() -> None:
    argv = probe_argv("/c/vmlinuz", "/c/initrd.img", "kvm")
    assert opt(argv, "-accel") == ["kvm"] and "-no-reboot" in argv
    assert opt(argv, "-serial") == ["stdio"]
    assert probe_ok("[    1.2] Run /init as init process\n")
    assert not probe_ok("qemu-system-x86_64: kvm_buf_set_msrs: Assertion failed")


def test_tcg_lab_cpu_model_and_threading_from_the_spec() -> None:
    argv = qemu_argv(BootSpec(**{**SPEC.__dict__, "cpu": "EPYC", "tcg_thread": "single", "cpus": 1,
                                 "extra_args": ("mitigations=off",)}))
    assert opt(argv, "-accel") == ["tcg,thread=single"] and opt(argv, "-cpu") == ["EPYC"]
    assert opt(argv, "-smp") == ["1"] and opt(argv, "-append")[0].endswith(" mitigations=off")


def test_tcg_lab_default_cpu_is_the_chosen_model() -> None:
    assert opt(qemu_argv(SPEC), "-cpu") == [TCG_CPU]


def test_bad_tuning_refused() -> None:
    with pytest.raises(ValueError, match="tcg_thread"):
        Tuning(tcg_thread="both")
