"""``kvmops guest`` and ``kvmops inventory`` against a test-driver site (exit codes, output)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kvmops import host as host_module
from kvmops.cli.main import main
from kvmops.guests.xml import read_domain
from kvmops.images import nocloud
from tests.unit.test_guest_testbed import Bed, ReplayRunner, bed

__all__ = ["bed"]


@pytest.fixture
def site(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> str:
    """The bed's site file; commands run locally, LVM reports come from captured output."""
    monkeypatch.setattr(host_module, "runner_for", lambda _site: ReplayRunner())
    return bed.site.path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_guest_xml_prints_the_domain(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "guest", "xml", "test1", "--memory", "2g", "--vcpus", "2", "--vlan", "2368")
    assert code == 0
    facts = read_domain(out)
    assert (facts.name, facts.memory_kib, facts.vcpus, facts.bridges) == ("test1", 2097152, 2, ("virbr1.2368",))
    assert facts.disk_sources == ("/dev/rl_build/vmtest1",)


@pytest.mark.parametrize(("argv", "message"), [
    (["--vlan", "9"], "VLAN 9 is not a network"),
    ([], "needs at least one bridge"),
    (["--vlan", "2368", "--memory", "0"], "memory"),
    (["--vlan", "2368", "--vcpus", "0"], "vCPUs"),
])
def test_guest_xml_bad_input_exits_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, "guest", "xml", "test1", *argv)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_define_plans_then_applies(capsys: pytest.CaptureFixture[str], site: str, bed: Bed) -> None:
    code, out, _ = run(capsys, "guest", "define", "test1", "--memory", "1g", "--vlan", "2368", "--site", site)
    assert code == 0
    assert "# Plan: define guest test1" in out and "nothing was changed" in out
    assert not bed.xml_dir.exists()
    code, out, _ = run(capsys, "guest", "define", "test1", "--memory", "1g", "--vlan", "2368",
                       "--site", site, "--apply")
    assert code == 0 and "2. done: define guest test1 in libvirt" in out
    assert read_domain((bed.xml_dir / "test1.xml").read_text()).memory_kib == 1048576


def test_list_start_and_inventory(capsys: pytest.CaptureFixture[str], site: str) -> None:
    code, out, _ = run(capsys, "guest", "list", "--site", site)
    assert code == 0
    assert [ln.split()[0] for ln in out.splitlines()] == ["NAME", "db1", "ext1", "web1"]
    code, out, _ = run(capsys, "guest", "start", "db1", "--site", site, "--apply")
    assert code == 0 and "1. done: start guest db1" in out
    code, out, _ = run(capsys, "inventory", "--site", site)
    assert code == 0
    assert "! guest db1: disk LV rl_build/vmgone is MISSING" in out
    assert "VG rl_build: 40.00 GiB free" in out


def test_destructive_commands_need_confirm(capsys: pytest.CaptureFixture[str], site: str) -> None:
    code, out, err = run(capsys, "guest", "destroy", "web1", "--site", site, "--apply")
    assert code == 2 and "confirm='web1'" in err
    code, out, _ = run(capsys, "guest", "destroy", "web1", "--site", site, "--apply", "--confirm", "web1")
    assert code == 0 and "1. done" in out


def test_console_info_and_errors(capsys: pytest.CaptureFixture[str], site: str) -> None:
    code, out, _ = run(capsys, "guest", "console", "web1", "--site", site)  # pytest's stdin is no terminal
    assert code == 0 and "stdin is not a terminal" in out and "virsh console web1" in out and "CTRL-]" in out
    code, _, err = run(capsys, "guest", "console", "db1", "--site", site)
    assert code == 2 and "guest db1 is shut off: start it first" in err
    code, _, err = run(capsys, "guest", "console", "web1", "--seconds", "0.1", "--site", site)
    assert code == 2 and "virsh console web1" in err
    code, _, err = run(capsys, "guest", "info", "web1", "--site", site)
    assert code == 2 and "guest agent" in err
    code, _, err = run(capsys, "guest", "shutdown", "nosuch", "--site", site)
    assert code == 2 and "no guest 'nosuch'" in err


def test_undefine_of_a_running_guest_is_refused(capsys: pytest.CaptureFixture[str], site: str,
                                                bed: Bed) -> None:
    code, _, err = run(capsys, "guest", "undefine", "web1", "--site", site, "--apply", "--confirm", "web1")
    assert code == 2 and "shut it down first" in err
    assert not Path(bed.xml_dir).exists()


def test_seed_done_plans_then_removes_the_seed(capsys: pytest.CaptureFixture[str], site: str, bed: Bed) -> None:
    bed.xml_dir.mkdir()
    seed = bed.xml_dir / "web1-seed.iso"
    seed.write_bytes(b"hashes")
    code, out, _ = run(capsys, "guest", "seed-done", "web1", "--site", site)
    assert code == 0 and f"rm -f -- {seed}" in out and "plan only" in out and seed.exists()
    code, out, _ = run(capsys, "guest", "seed-done", "web1", "--site", site, "--apply")
    assert code == 0 and f"ok: {seed} is removed" in out and not seed.exists()
    code, out, _ = run(capsys, "guest", "seed-done", "web1", "--site", site)
    assert code == 0 and "guest web1 has no seed left" in out


def test_image_seed_gives_root_its_keys_at_the_one_seed_path(capsys: pytest.CaptureFixture[str], site: str,
                                                              bed: Bed, tmp_path: Path) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n root@example"
    (tmp_path / "root.pub").write_text(key + "\n")
    code, out, _ = run(capsys, "image", "seed", "web9", "--root-key", str(tmp_path / "root.pub"), "--site", site,
                       "--apply")
    seed = Path(nocloud.seed_path(bed.site, "web9"))
    assert code == 0 and seed == bed.xml_dir / "web9-seed.iso" and str(seed) in out
    _vol, files = nocloud.read_iso(seed.read_bytes())
    doc = yaml.safe_load(files["user-data"])
    assert doc["users"][2] == {"name": "root", "ssh_authorized_keys": [key]} and doc["disable_root"] is False
