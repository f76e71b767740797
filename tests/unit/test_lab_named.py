"""Named labs (``kvmops lab up --name kvm2``): their own run folder beside the default one,
the same image cache; the default lab's paths and messages stay as they were."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from kvmops.cli.main import main
from kvmops.site import load_site
from kvmops_lab import LabPaths, destroy, status
from kvmops_lab.build import prune_other_images
from kvmops_lab.errors import LabError
from kvmops_lab.labsite import render_site
from kvmops_lab.paths import check_name
from kvmops_lab.procs import is_lab_qemu
from kvmops_lab.progress import Phases
from kvmops_lab.state import STALE
from tests.unit.test_lab_state import make_state


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KVMOPS_CACHE", str(tmp_path))
    return tmp_path / "lab"


def test_a_named_lab_has_its_own_run_folder_and_shares_the_image(cache: Path) -> None:
    default, kvm2 = LabPaths.named(None), LabPaths.named("kvm2")
    assert default == LabPaths.default() and default.run == cache / "run" and default.up_lock == cache / "up.lock"
    assert kvm2.run == cache / "run-kvm2" and kvm2.up_lock == cache / "up-kvm2.lock"
    assert (kvm2.state, kvm2.site, kvm2.known_hosts, kvm2.overlay, kvm2.pv_disk) == (
        cache / "run-kvm2/state.json", cache / "run-kvm2/site.toml", cache / "run-kvm2/known_hosts",
        cache / "run-kvm2/root-overlay.qcow2", cache / "run-kvm2/pv.qcow2")
    assert kvm2.image("ab" * 16) == default.image("ab" * 16) and kvm2.lock == default.lock
    assert default.cli("up") == "kvmops lab up" and kvm2.cli("up") == "kvmops lab up --name kvm2"


@pytest.mark.parametrize("bad", ["", "Kvm2", "2kvm", "kvm 2", "../x", "a/b", "x" * 25, "kvm_2"])
def test_bad_names_are_refused(bad: str) -> None:
    with pytest.raises(LabError, match="lab name"):
        check_name(bad)


def test_a_named_labs_qemu_is_not_the_default_labs(cache: Path) -> None:
    qemu = ("/usr/bin/qemu-system-x86_64", "-drive", f"file={cache}/run-kvm2/root-overlay.qcow2")
    assert is_lab_qemu(qemu, LabPaths.named("kvm2").run)
    assert not is_lab_qemu(qemu, LabPaths.named(None).run)
    assert not is_lab_qemu(qemu, LabPaths.named("kvm").run)


def test_status_and_destroy_of_a_named_lab_leave_the_default_one(cache: Path) -> None:
    default, kvm2 = LabPaths.named(None), LabPaths.named("kvm2")
    for p in (default, kvm2):
        p.run.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    kvm2.state.write_text(make_state(kvm2.run, dead.pid).to_json())
    st = status(kvm2, check_ssh=False)
    assert st.kind == STALE and "kvmops lab destroy --name kvm2" in st.message
    assert status(default, check_ssh=False).kind != STALE
    destroy(kvm2)
    assert not kvm2.run.exists() and default.run.is_dir()


def test_a_named_lab_never_drops_the_shared_cache(cache: Path) -> None:
    kvm2 = LabPaths.named("kvm2")
    kvm2.run.mkdir(parents=True)
    with pytest.raises(LabError, match="shared by every lab"):
        destroy(kvm2, cache=True)
    assert kvm2.run.is_dir()


def test_pruning_old_images_keeps_every_labs_base(cache: Path) -> None:
    old1, old2, stale, new = (LabPaths.named(None).image(d * 16) for d in ("a1", "b2", "c3", "d4"))
    for img in (old1, old2, stale, new):
        img.dir.mkdir(parents=True)
    for name, img in (("kvm1", old1), ("kvm2", old2)):
        p = LabPaths.named(name)
        p.run.mkdir(parents=True)
        p.state.write_text(replace(make_state(p.run), image_dir=str(img.dir)).to_json())
    prune_other_images(LabPaths.named(None), new, Phases())
    assert old1.dir.is_dir() and old2.dir.is_dir() and new.dir.is_dir() and not stale.dir.exists()


def test_the_site_of_a_named_lab_carries_its_name(tmp_path: Path) -> None:
    st = make_state(tmp_path)
    (tmp_path / "site.toml").write_text(render_site(st, "kvm", "kvm2"))
    assert load_site(tmp_path / "site.toml").name == "kvm2"
    (tmp_path / "site.toml").write_text(render_site(st))
    assert load_site(tmp_path / "site.toml").name == "kvmlab"


def test_the_cli_takes_a_name(capsys: pytest.CaptureFixture[str], cache: Path) -> None:
    assert main(["lab", "status", "--name", "kvm2"]) == 3
    assert "kvmops lab up --name kvm2" in capsys.readouterr().out
    assert main(["lab", "site", "--name", "kvm2"]) == 2
    assert str(cache / "run-kvm2" / "site.toml") in capsys.readouterr().err
    assert main(["lab", "destroy", "--name", "kvm2"]) == 0
    assert main(["lab", "status", "--name", "Bad"]) == 2
    assert "lab name 'Bad'" in capsys.readouterr().err
