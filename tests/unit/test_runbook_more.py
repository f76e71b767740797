"""The disk runbooks (guest-inspect, image-tweak, guest-unreachable) against the demo site:
refusals before any change, the plan shown where a replay site cannot mount; the helpers
they use (inspection plan, lock folder override)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvmops.errors import InvalidInput
from kvmops.images import inspect
from kvmops.lock import LOCK_DIR, guest_lock, lock_dir
from kvmops.runbook.execute import run_runbook
from kvmops.runbook.journal import RunRecord
from kvmops.runners import LocalRunner


def _run(tmp_path: Path, name: str, **params: object) -> RunRecord:
    return run_runbook(name, dict(params), site="demo", apply=False, journal_dir=tmp_path / "journal")


def _output(rec: RunRecord) -> str:
    cells = json.loads(Path(rec.notebook).read_text())["cells"]
    return "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     for c in cells for o in c.get("outputs", []))


def _no_change(rec: RunRecord) -> None:
    assert not [c for c in rec.commands if c["mutates"] and c["executed"]]


@pytest.mark.parametrize(("name", "params", "step", "message"), [
    ("guest-inspect", {"guest": "test1"}, "Check preconditions", "guest test1 is running"),
    ("guest-inspect", {"guest": "nosuch"}, "Check preconditions", "LV rl_build/vmnosuch does not exist"),
    ("image-tweak", {"guest": "test1"}, "Check preconditions", "guest test1 is running"),
    ("image-tweak", {"sudo": False, "console": False}, "Check preconditions", "nothing to do"),
    ("guest-unreachable", {"guest": "nosuch"}, "Read the guest's state", "nosuch"),
])
def test_refused_before_any_change(tmp_path: Path, name: str, params: dict[str, object], step: str,
                                   message: str) -> None:
    rec = _run(tmp_path, name, **params)
    assert rec.status == "failed"
    assert rec.failed_step == step
    assert message in (rec.error or ""), rec.error
    _no_change(rec)


@pytest.mark.parametrize(("address", "message"), [
    ("10.5.68.254", "default router of VLAN 2368"), ("10.5.67.20", "belongs to VLAN 2367"),
])
def test_a_bad_address_is_refused_before_the_kernel_starts(tmp_path: Path, address: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        _run(tmp_path, "image-tweak", address=address)
    assert not (tmp_path / "journal").exists() or not any((tmp_path / "journal").iterdir())


def test_unreachable_guest_that_is_off_gets_its_disk_planned_and_suggestions(tmp_path: Path) -> None:
    rec = _run(tmp_path, "guest-unreachable", guest="influx")
    assert rec.status == "ok", rec.error
    out = _output(rec)
    assert "guest influx is shut off: no console to read" in out
    assert "kpartx -a -v -r -p p /dev/mapper/rl_build-vminflux" in out
    assert "SKIPPED: site demo replays recorded outputs" in out
    assert "guest-lifecycle guest=influx action=start" in out and "autostart is off" in out
    _no_change(rec)


def test_preview_of_an_lv_maps_read_only_and_undoes_everything() -> None:
    plan = inspect.preview(vg="rl_build", lv="vmvgcn-test2", lines=5)
    text = plan.render().splitlines()
    cmds = [ln for ln in text if not ln.startswith("#")]
    assert cmds[0] == "kpartx -l -p p /dev/mapper/rl_build-vmvgcn--test2"  # what is about to be mapped
    assert cmds[2] == "kpartx -a -v -r -p p /dev/mapper/rl_build-vmvgcn--test2"
    assert cmds[-1] == "kpartx -d -v -p p /dev/mapper/rl_build-vmvgcn--test2"
    assert "chroot /run/kvmops/mnt-XXXXXX tail -n 5 /var/log/messages" in cmds
    assert cmds.index("umount --recursive /run/kvmops/mnt-XXXXXX") > cmds.index("df -h -T /run/kvmops/mnt-XXXXXX")
    assert not any(s.mutates for s in plan.steps)
    assert all("-o ro" in c for c in cmds if c.startswith("mount "))


def test_preview_of_an_image_file_uses_a_read_only_loop() -> None:
    cmds = [ln for ln in inspect.preview(image="/srv/img/x.raw").render().splitlines() if not ln.startswith("#")]
    assert cmds[:2] == ["partx --show -- /srv/img/x.raw", "losetup --find --show --read-only /srv/img/x.raw"]
    assert cmds[-2:] == ["partx --delete /dev/loopN", "losetup --detach /dev/loopN"]


def test_builders() -> None:
    assert inspect.tail_cmd("/m", "/var/log/syslog", 7).argv == ("chroot", "/m", "tail", "-n", "7", "/var/log/syslog")
    assert inspect.journal_cmd("/m", 3).argv == (
        "journalctl", "--directory", "/m/var/log/journal", "--no-pager", "-n", "3", "-o", "short-iso")
    assert not inspect.df_cmd(["/m", "/m/boot"]).mutates
    with pytest.raises(InvalidInput, match="lines must be"):
        inspect.tail_cmd("/m", "/x", 0)
    with pytest.raises(InvalidInput, match="vg and lv, or image"):
        inspect.preview()


def test_lock_folder_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KVMOPS_LOCK_DIR", raising=False)
    assert lock_dir() == LOCK_DIR
    monkeypatch.setenv("KVMOPS_LOCK_DIR", str(tmp_path / "locks"))
    with guest_lock(LocalRunner(), "test1", "unit test"):
        assert (tmp_path / "locks" / "guest-test1.owner").read_text().endswith("unit test\n")
    assert not (tmp_path / "locks" / "guest-test1.owner").exists()
