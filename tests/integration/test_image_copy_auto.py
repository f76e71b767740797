"""The ``auto`` copy method for real: raw images measured (qemu-img map + sampled reads), copied
onto a loop device (standing in for the LV) that holds old random data, bytes compared."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.host import Host
from kvmops.images import density
from kvmops.images.copy import copy_to_device, progress_filter
from kvmops.images.probe import ImageInfo
from kvmops.runners import LocalRunner
from kvmops.site import load_site
from tests.conftest import need_tools
from tests.support.images import leftovers
from tests.support.run import run_plan

pytestmark = pytest.mark.integration
MiB = 1 << 20
SIZE = 48 * MiB


@pytest.fixture(autouse=True)
def _nothing_left(tmp_path: Path) -> Iterator[None]:
    need_tools("losetup", "qemu-img", "dd", "cmp", "python3")
    yield
    assert leftovers(tmp_path) == ([], []), "a loop device was left behind"


def _image(path: Path, kind: str) -> Path:
    """dense: all random; sparse: every 8th MiB random, the rest holes; zeros: the rest written zeros."""
    with path.open("wb") as f:
        f.truncate(SIZE)
        for mib in range(SIZE // MiB):
            f.seek(mib * MiB)
            if kind == "dense" or mib % 8 == 0:
                f.write(os.urandom(MiB))
            elif kind == "zeros":
                f.write(bytes(MiB))
    return path


@pytest.fixture
def device(tmp_path: Path) -> Iterator[str]:
    """A loop device over a 64 MiB file full of old random data (a reused LV)."""
    backing = tmp_path / "lv.img"
    with backing.open("wb") as f:
        for _ in range(64):
            f.write(os.urandom(MiB))
    dev = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True,
                         check=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "--detach", dev], check=True)


@pytest.mark.parametrize("kind, method, fraction", [("dense", "dd", 1.0), ("sparse", "qemu-img", 0.125),
                                                    ("zeros", "qemu-img", 0.125)])
def test_auto_copies_by_the_numbers_and_bytes_match(tmp_path: Path, device: str, kind: str, method: str,
                                                    fraction: float) -> None:
    src = _image(tmp_path / f"{kind}.raw", kind)
    info = ImageInfo(str(src), "raw", SIZE)
    runner = LocalRunner()
    measured = density.measure(runner, info)
    assert measured is not None and measured.samples == density.SAMPLES
    assert measured.fraction == pytest.approx(fraction, abs=0.05), measured
    assert measured.allocated == (0.125 if kind == "sparse" else 1.0)
    plan = copy_to_device(info, device, 64 * MiB, target="test/vmauto", density=measured)
    write = plan.steps[0]
    assert write.cmd is not None and write.cmd.argv[0] == method
    assert f"{measured.fraction:.0%} data" in write.reason
    seen: list[str] = []
    host = Host(load_site(None), runner, "test:///default")
    run_plan(host, plan, "test/vmauto", progress=progress_filter(seen.append))
    if method == "dd":
        assert any(s.startswith(f"{SIZE} bytes") for s in seen), seen  # dd's status=progress summary
    else:
        assert "100%" in seen, seen
    assert any("identical" in s for s in seen), seen  # qemu-img compare ran
    same = subprocess.run(["cmp", "-n", str(SIZE), str(src), device], capture_output=True, text=True)
    assert same.returncode == 0, same.stdout  # zero ranges really zeroed over the old data


def test_qcow2_and_unreadable_images_are_not_measured(tmp_path: Path) -> None:
    runner = LocalRunner()
    assert density.measure(runner, ImageInfo(str(tmp_path / "x.qcow2"), "qcow2", SIZE)) is None
    assert density.measure(runner, ImageInfo(str(tmp_path / "missing.raw"), "raw", SIZE)) is None
