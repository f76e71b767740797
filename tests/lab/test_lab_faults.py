"""The lab's faults, each with a clear message: a taken SSH port, a boot that fails."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kvmops.cmd import change
from kvmops.runners import LocalRunner
from kvmops_lab import procs
from kvmops_lab.errors import LabError
from kvmops_lab.paths import LabPaths
from kvmops_lab.ports import free_port
from kvmops_lab.progress import Phases
from kvmops_lab.qemu import BootSpec, qemu_argv
from kvmops_lab.recipe import Recipe
from kvmops_lab.state import LabState
from kvmops_lab.vm import _start, wait_for_ssh

pytestmark = pytest.mark.lab


def test_taken_port_is_refused_before_qemu_starts(lab_state: LabState, tmp_path: Path) -> None:
    paths = LabPaths(tmp_path / "lab")
    img = LabPaths.default().image(Recipe().digest)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(LabError, match=f"SSH port {port} on 127.0.0.1 is already taken"):
            _start(paths, img, "tcg", port, Phases(lambda m: None), None)
    assert procs.lab_qemus(paths.run) == []


def test_port_of_the_running_lab_is_refused(lab_state: LabState, tmp_path: Path) -> None:
    paths = LabPaths(tmp_path / "lab")
    img = LabPaths.default().image(Recipe().digest)
    with pytest.raises(LabError, match="already taken"):
        _start(paths, img, "tcg", lab_state.port, Phases(lambda m: None), None)


def test_a_boot_without_root_fails_with_the_serial_tail(lab_state: LabState, tmp_path: Path) -> None:
    """A second VM whose root disk is empty: the initramfs gives up; the error shows why."""
    paths = LabPaths(tmp_path / "lab")
    paths.run.mkdir(parents=True)
    img = LabPaths.default().image(Recipe().digest)
    runner = LocalRunner()
    for disk in (paths.overlay, paths.pv_disk):
        runner.run(change("qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1G"))
    spec = BootSpec(kernel=str(img.kernel), initrd=str(img.initrd), root_disk=str(paths.overlay),
                    pv_disk=str(paths.pv_disk), serial_log=str(paths.serial), pidfile=str(paths.pidfile),
                    qmp=str(paths.qmp), port=free_port(), memory_mb=512, cpus=1,
                    extra_args=("rootdelay=3",))
    runner.run(change(*qemu_argv(spec)))
    pid = int(paths.pidfile.read_text())
    failing = LabState(**{**lab_state.__dict__, "pid": pid, "port": spec.port,
                          "serial": str(paths.serial), "run_dir": str(paths.run)})
    try:
        with pytest.raises(LabError) as exc:
            wait_for_ssh(paths, failing, Phases(lambda m: None), timeout=400)
        text = str(exc.value)
        assert "failed to boot" in text and str(paths.serial) in text
        assert "ALERT!" in text or "Gave up waiting for root" in text
    finally:
        procs.terminate(pid, grace=1)
    assert procs.lab_qemus(paths.run) == []
