"""The ``auto`` copy method for real: ``qemu-img convert -n -t none -W`` (out-of-order writes)
of dense, sparse and zero-written raw images onto a loop device (standing in for the LV) that
holds old random data; bytes compared, the verification run, progress in a few lines."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kvmops.host import Host
from kvmops.images.copy import copy_to_device
from kvmops.images.probe import ImageInfo
from kvmops.progress import thinned
from kvmops.runners import LocalRunner
from kvmops.site import load_site
from tests.conftest import need_tools
from tests.support.images import leftovers
from tests.support.loop import disk_node
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


def _host(tmp_path: Path) -> Host:
    return Host(replace(load_site(None), file_disk_dir=str(tmp_path / "disks")), LocalRunner(), "test:///default")


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
        yield disk_node(tmp_path / "disks", dev)  # the same disk inside the site's file_disk_dir
    finally:
        subprocess.run(["losetup", "--detach", dev], check=True)


@pytest.mark.parametrize("kind", ["dense", "sparse", "zeros"])
def test_auto_copies_out_of_order_over_old_data_and_bytes_match(tmp_path: Path, device: str, kind: str,
                                                                site_vg: str) -> None:
    src = _image(tmp_path / f"{kind}.raw", kind)
    info = ImageInfo(str(src), "raw", SIZE)
    plan = copy_to_device(info, device, 64 * MiB, target="test/vmauto")
    write = plan.steps[0]
    assert write.cmd is not None and write.cmd.argv[:2] == ("qemu-img", "convert") and "-W" in write.cmd.argv
    seen: list[str] = []
    host = _host(tmp_path)
    run_plan(host, plan, "test/vmauto", progress=thinned(seen.append))
    percentages = [s for s in seen if s.endswith("%")]
    assert "100%" in percentages and len(percentages) <= 10, seen  # a few lines per command, not 25+
    assert any("identical" in s for s in seen), seen  # qemu-img compare ran
    same = subprocess.run(["cmp", "-n", str(SIZE), str(src), device], capture_output=True, text=True)
    assert same.returncode == 0, same.stdout  # zero ranges really zeroed over the old data


def test_dd_when_asked_and_only_for_raw_images(tmp_path: Path, device: str, site_vg: str) -> None:
    src = _image(tmp_path / "dense.raw", "dense")
    plan = copy_to_device(ImageInfo(str(src), "raw", SIZE), device, 64 * MiB, target="test/vmauto", method="dd")
    assert plan.steps[0].cmd is not None and plan.steps[0].cmd.argv[0] == "dd"
    seen: list[str] = []
    run_plan(_host(tmp_path), plan, "test/vmauto",
             progress=thinned(seen.append))
    assert any(s.startswith(f"{SIZE} bytes") for s in seen), seen  # dd's status=progress summary
    assert subprocess.run(["cmp", "-n", str(SIZE), str(src), device]).returncode == 0
