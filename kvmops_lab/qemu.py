"""QEMU's command line for the lab (pure), and the choice between KVM and TCG (by trying)."""

from __future__ import annotations

from dataclasses import dataclass

from kvmops_lab.recipe import ADMIN_MAC, UPLINK_MAC

QEMU = "qemu-system-x86_64"
PV_SERIAL = "kvmops-pv"
ROOT_SERIAL = "kvmops-root"
GUEST_IMAGE_SERIAL = "kvmops-guest-image"
CLOUD_IMAGE_SERIAL = "kvmops-cloud-image"


@dataclass(frozen=True)
class Tuning:
    """The lab's CPU model and extra kernel arguments (``kvmops_lab.up(tuning=...)``); the
    defaults are what bench/lab_nested_boot.py chose for the lab's nested guests."""

    cpu: str = ""  # QEMU's -cpu; "" = host under KVM, TCG_CPU under TCG
    kernel_args: tuple[str, ...] = ()
    cpus: int = 2
    tcg_thread: str = ""  # -accel tcg,thread=single|multi; "" = QEMU's default (multi for 2 CPUs)

    def __post_init__(self) -> None:
        if self.tcg_thread not in ("", "single", "multi"):
            raise ValueError(f"tcg_thread must be single or multi, got {self.tcg_thread!r}")


LAB_TUNING = Tuning()


@dataclass(frozen=True)
class BootSpec:
    """Everything one lab boot needs; ``qemu_argv`` turns it into argv."""

    kernel: str
    initrd: str
    root_disk: str
    pv_disk: str
    serial_log: str
    pidfile: str
    qmp: str
    port: int
    accel: str = "tcg"
    memory_mb: int = 1536
    cpus: int = 2
    guest_image: str | None = None
    cloud_image: str | None = None
    extra_args: tuple[str, ...] = ()
    cpu: str = ""  # -cpu MODEL[,opts]; "" = host (KVM) or TCG_CPU
    tcg_thread: str = ""  # thread=single|multi under TCG; "" = QEMU's default

    def __post_init__(self) -> None:
        if self.tcg_thread not in ("", "single", "multi"):
            raise ValueError(f"tcg_thread must be single or multi, got {self.tcg_thread!r}")
        if self.accel not in ("kvm", "tcg"):
            raise ValueError(f"accel must be kvm or tcg, got {self.accel!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"bad SSH port {self.port}")


# The lab's CPU under TCG (bench/lab_nested_boot.py measured the choices for its nested guests).
TCG_CPU = "max"

KERNEL_ARGS = (
    "root=/dev/vda", "rw", "console=ttyS0,115200", "panic=-1", "net.ifnames=1",
    "systemd.show_status=true", "systemd.journald.forward_to_console=0",
)


def qemu_argv(spec: BootSpec) -> tuple[str, ...]:
    """``qemu-system-x86_64 -accel tcg -m 1536 -smp 2 -kernel ... -daemonize ...``.

    Disks: ``vda`` the root overlay, ``vdb`` the PV of VG rl_build (``/dev/disk/by-id/
    virtio-kvmops-pv``), optionally the small guest image and the realistic cloud image, both
    read-only (``/dev/disk/by-id/virtio-kvmops-guest-image``, ``...-cloud-image``). NICs: the admin
    NIC with SSH forwarded to ``127.0.0.1:PORT``; the uplink with a fixed MAC (named
    ``ens802f1`` inside). Both are ``restrict=on``: nothing leaves this machine.
    """
    argv = [
        QEMU, "-name", "kvmops-lab", "-accel", _accel(spec),
        "-cpu", spec.cpu or ("host" if spec.accel == "kvm" else TCG_CPU),
        "-m", str(spec.memory_mb), "-smp", str(spec.cpus),
        "-kernel", spec.kernel, "-initrd", spec.initrd, "-append", " ".join((*KERNEL_ARGS, *spec.extra_args)),
        "-no-reboot", "-display", "none", "-vga", "none",
        "-serial", f"file:{spec.serial_log}",
        "-qmp", f"unix:{spec.qmp},server=on,wait=off",
        "-daemonize", "-pidfile", spec.pidfile,
        *_disk("root", spec.root_disk, "qcow2", ROOT_SERIAL),
        *_disk("pv", spec.pv_disk, "qcow2", PV_SERIAL),
    ]
    if spec.guest_image:
        argv += _disk("gimg", spec.guest_image, "raw", GUEST_IMAGE_SERIAL, readonly=True)
    if spec.cloud_image:
        argv += _disk("cimg", spec.cloud_image, "raw", CLOUD_IMAGE_SERIAL, readonly=True)
    argv += [
        "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{spec.port}-:22",
        "-device", f"virtio-net-pci,netdev=n0,mac={ADMIN_MAC}",
        "-netdev", "user,id=n1,restrict=on",
        "-device", f"virtio-net-pci,netdev=n1,mac={UPLINK_MAC}",
        "-device", "virtio-rng-pci",
    ]
    return tuple(argv)


def _accel(spec: BootSpec) -> str:
    return f"tcg,thread={spec.tcg_thread}" if spec.accel == "tcg" and spec.tcg_thread else spec.accel


def _disk(name: str, path: str, fmt: str, serial: str, readonly: bool = False) -> list[str]:
    ro = ",read-only=on" if readonly else ""
    return [
        "-drive", f"file={path},format={fmt},if=none,id={name},cache=unsafe,discard=unmap{ro}",
        "-device", f"virtio-blk-pci,drive={name},serial={serial}",
    ]


def probe_argv(kernel: str, initrd: str, accel: str) -> tuple[str, ...]:
    """A throwaway boot of the lab kernel, killed once it reached its initramfs.

    ``qemu-system-x86_64 -accel kvm -kernel K -initrd I -append 'console=ttyS0 panic=-1'
    -no-reboot -serial stdio``: when the accelerator really works the kernel prints its boot
    log up to ``Run /init as init process`` within seconds.
    """
    return (
        QEMU, "-accel", accel, "-cpu", "host" if accel == "kvm" else "max", "-m", "512", "-smp", "1",
        "-kernel", kernel, "-initrd", initrd,
        "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent",
        "-no-reboot", "-display", "none", "-vga", "none", "-serial", "stdio",
        "-monitor", "none", "-nodefaults",
    )


# The probe passed when the kernel's boot log reached its initramfs.
PROBE_MARKERS = ("Run /init as init process", "Freeing unused kernel image")


def probe_ok(serial_output: str) -> bool:
    return any(m in serial_output for m in PROBE_MARKERS)
