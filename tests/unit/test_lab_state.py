"""The lab's state file: parsed strictly, and running/stopped/stale told apart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kvmops_lab import LabPaths, status
from kvmops_lab.errors import LabError
from kvmops_lab.paths import cache_root
from kvmops_lab.procs import is_lab_qemu
from kvmops_lab.state import RUNNING, STALE, STOPPED, LabState, classify, parse_state, read_state


def make_state(run: Path, pid: int = 4242) -> LabState:
    return LabState(pid=pid, port=2222, accel="tcg", image_dir="/c/image-1", run_dir=str(run),
                    key="/c/image-1/id_ed25519", known_hosts=str(run / "known_hosts"),
                    site=str(run / "site.toml"), serial=str(run / "serial.log"),
                    qmp=str(run / "qmp.sock"), started="2026-01-01T00:00:00+00:00")


def test_round_trip(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    assert parse_state(state.to_json()) == state


def test_missing_file_means_no_lab(tmp_path: Path) -> None:
    assert read_state(tmp_path / "state.json") is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"pid": 1}', "lacks"),
    ],
)
def test_bad_files_say_what_to_do(text: str, words: str) -> None:
    with pytest.raises(LabError, match=words) as exc:
        parse_state(text, "run/state.json")
    assert "kvmops lab destroy" in str(exc.value)


def test_bad_types_are_refused(tmp_path: Path) -> None:
    data = json.loads(make_state(tmp_path).to_json())
    for key, value in (("pid", "12"), ("port", 0), ("pid", True), ("site", 3)):
        bad = {**data, key: value}
        with pytest.raises(LabError, match=key):
            parse_state(json.dumps(bad))


def test_classify() -> None:
    state = make_state(Path("/x"))
    assert classify(None, False) == STOPPED
    assert classify(state, True) == RUNNING
    assert classify(state, False) == STALE


def test_status_of_a_dead_pid_is_stale(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    paths.run.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    paths.state.write_text(make_state(paths.run, dead.pid).to_json())
    st = status(paths, check_ssh=False)
    assert st.kind == STALE
    assert str(dead.pid) in st.message and "kvmops lab destroy" in st.message


def test_status_without_state_is_stopped(tmp_path: Path) -> None:
    st = status(LabPaths(tmp_path), check_ssh=False)
    assert st.kind == STOPPED and st.state is None and st.orphans == ()


def test_a_live_process_that_is_not_our_qemu_is_stale(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    paths.run.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        paths.state.write_text(make_state(paths.run, other.pid).to_json())
        assert status(paths, check_ssh=False).kind == STALE
    finally:
        other.kill()
        other.wait()


def test_lab_qemu_is_recognised_by_its_run_folder() -> None:
    run = Path("/c/lab/run")
    assert is_lab_qemu(("/usr/bin/qemu-system-x86_64", "-drive", "file=/c/lab/run/root-overlay.qcow2"), run)
    assert not is_lab_qemu(("/usr/bin/qemu-system-x86_64", "-drive", "file=/other/run/x.qcow2"), run)
    assert not is_lab_qemu(("/usr/bin/python3", "file=/c/lab/run/x"), run)
    assert not is_lab_qemu(("/usr/bin/qemu-system-x86_64", "-drive", "file=/c/lab/runaway/x"), run)
    assert not is_lab_qemu((), run)


def test_cache_root_follows_env() -> None:
    assert cache_root({"KVMOPS_CACHE": "/srv/cache"}) == Path("/srv/cache/lab")
    assert cache_root({"HOME": "/home/ops"}) == Path("/home/ops/.cache/kvmops/lab")
