"""`kvmops lab up --keep-disks`: after a power cut (the lab's QEMU killed) the same host comes
back on the disks it left; a fresh `up` still starts clean. QEMU itself is not run here: the
runner that would start it records the commands."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from kvmops.runners import LocalRunner
from kvmops_lab import procs, vm
from kvmops_lab.errors import LabError
from kvmops_lab.paths import ImagePaths, LabPaths
from kvmops_lab.ports import port_free
from kvmops_lab.progress import Phases


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[LabPaths, ImagePaths, list[tuple[str, ...]]]:
    """A run folder an earlier lab left (disks with content, a serial log); commands recorded."""
    p = LabPaths(tmp_path / "lab")
    p.run.mkdir(parents=True)
    p.overlay.write_bytes(b"root fs as the power cut left it")
    p.pv_disk.write_bytes(b"PV with the guests' LVs, a merge half done")
    p.serial.write_text("old boot\n")
    img = ImagePaths(tmp_path / "img")
    img.dir.mkdir()
    for f in (img.root, img.kernel, img.initrd, img.key):
        f.write_text("x")
    img.host_keys.write_text("ssh-ed25519 AAAA host\n")
    ran: list[tuple[str, ...]] = []

    def run(_self: LocalRunner, cmd: object, **_k: object) -> None:
        argv = tuple(cmd.argv)  # type: ignore[attr-defined]
        ran.append(argv)
        if argv[0].startswith("qemu-system"):
            p.pidfile.write_text("4242\n")

    monkeypatch.setattr(LocalRunner, "run", run)
    monkeypatch.setattr(procs, "lab_qemus", lambda _run: [])
    return p, img, ran


def test_kept_disks_are_booted_as_they_were(lab: tuple[LabPaths, ImagePaths, list[tuple[str, ...]]]) -> None:
    p, img, ran = lab
    state = vm._start(p, img, "tcg", None, Phases(lambda _l: None), (None, None), keep_disks=True)
    assert [a[0] for a in ran] == ["qemu-system-x86_64"]  # no qemu-img create: nothing made anew
    assert p.overlay.read_bytes() == b"root fs as the power cut left it"
    assert p.pv_disk.read_bytes() == b"PV with the guests' LVs, a merge half done"
    assert any(str(p.pv_disk) in arg for arg in ran[0]) and any(str(p.overlay) in arg for arg in ran[0])
    assert not p.serial.exists()  # a new boot, a new log
    assert state.pid == 4242 and p.state.exists()


def test_a_fresh_up_still_starts_clean(lab: tuple[LabPaths, ImagePaths, list[tuple[str, ...]]]) -> None:
    p, img, ran = lab
    vm._start(p, img, "tcg", None, Phases(lambda _l: None), (None, None))
    assert [a[0] for a in ran] == ["qemu-img", "qemu-img", "qemu-system-x86_64"]  # overlay and PV made anew
    assert not p.overlay.exists() and not p.pv_disk.exists()  # the old ones removed (the recorder made none)


def test_keeping_disks_is_refused_without_them_or_while_a_qemu_uses_them(
        lab: tuple[LabPaths, ImagePaths, list[tuple[str, ...]]], monkeypatch: pytest.MonkeyPatch) -> None:
    p, img, ran = lab
    monkeypatch.setattr(procs, "lab_qemus", lambda _run: [777])
    with pytest.raises(LabError, match=r"a lab QEMU still runs on these disks \(pid\(s\) 777\)"):
        vm._start(p, img, "tcg", None, Phases(lambda _l: None), (None, None), keep_disks=True)
    monkeypatch.setattr(procs, "lab_qemus", lambda _run: [])
    p.pv_disk.unlink()
    with pytest.raises(LabError, match="no disks of an earlier lab to keep"):
        vm._start(p, img, "tcg", None, Phases(lambda _l: None), (None, None), keep_disks=True)
    assert ran == [] and p.overlay.exists()  # nothing started, nothing removed


def test_a_power_cut_needs_a_running_lab(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no running lab to cut the power of"):
        vm.power_cut(LabPaths(tmp_path))


def test_a_power_cut_waits_until_the_dead_lab_s_port_is_released() -> None:
    """The kernel closes a killed QEMU's listening socket a moment after the process is gone:
    `up --keep-disks` on the same port right after would find it taken."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    threading.Timer(0.5, listener.close).start()
    vm._wait_port_released(port, 5)
    assert port_free(port)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        with pytest.raises(LabError, match=f"SSH port {held.getsockname()[1]} is still bound 0 s after"):
            vm._wait_port_released(held.getsockname()[1], 0.3)


def test_up_passes_keep_disks_through(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`kvmops lab up --keep-disks` reaches the start (the wiring, not only _start)."""
    seen: list[bool] = []

    def start(*_a: object, **_k: object) -> object:
        seen.append(bool(_a[-1]) if len(_a) > 6 else bool(_k.get("keep_disks")))
        raise LabError("stop here")

    monkeypatch.setattr(vm, "_reuse_or_clean", lambda _p, _ph: None)
    monkeypatch.setattr(vm, "_need_tools", lambda: None)
    monkeypatch.setattr(vm, "ensure_image", lambda *_a: ImagePaths(tmp_path))
    monkeypatch.setattr(vm, "_start", start)
    for keep in (True, False):
        with pytest.raises(LabError, match="stop here"):
            vm.up(LabPaths(tmp_path / "lab"), accel="tcg", keep_disks=keep)
    assert seen == [True, False]
