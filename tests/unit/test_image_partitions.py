"""Names and builders for kpartx (LVs) and loop + partx (image files)."""

from __future__ import annotations

import pytest

from kvmops.errors import InvalidInput
from kvmops.images import partitions as pt


@pytest.mark.parametrize("vg, lv, name", [
    ("rl_build", "vmtest1", "rl_build-vmtest1"),
    ("rl_build", "vmvgcn-test2", "rl_build-vmvgcn--test2"),
    ("my-vg", "vm-a-b", "my--vg-vm--a--b"),
])
def test_mapper_names_double_dashes(vg: str, lv: str, name: str) -> None:
    assert pt.mapper_name(vg, lv) == name
    assert pt.lv_partition_path(vg, lv, 1) == f"/dev/mapper/{name}p1"


def test_guide_example_partition_link() -> None:
    """Guide 4.3: kpartx -av /dev/mapper/rl_build-vmvgcn--test2 -> ...p1 under /dev/mapper only."""
    assert pt.lv_partition_path("rl_build", "vmvgcn-test2", 1) == "/dev/mapper/rl_build-vmvgcn--test2p1"


def test_kpartx_commands_fix_the_delimiter_and_default_read_only() -> None:
    dev = pt.lv_mapper_path("rl_build", "vmtest1")
    assert pt.kpartx_list(dev).argv == ("kpartx", "-l", "-p", "p", dev)
    ro = pt.kpartx_add(dev)
    assert ro.argv == ("kpartx", "-a", "-v", "-r", "-p", "p", dev) and not ro.mutates
    rw = pt.kpartx_add(dev, write=True)
    assert "-r" not in rw.argv and rw.mutates
    assert pt.kpartx_delete(dev).argv == ("kpartx", "-d", "-v", "-p", "p", dev)


def test_loop_commands() -> None:
    ro = pt.losetup_attach("/srv/a.raw")
    assert ro.argv == ("losetup", "--find", "--show", "--read-only", "/srv/a.raw") and not ro.mutates
    assert pt.losetup_attach("/srv/a.raw", write=True).mutates
    assert pt.partx_add("/dev/loop3").argv == ("partx", "--add", "/dev/loop3")
    assert pt.partx_delete("/dev/loop3").ok == (0, 1)
    assert pt.losetup_refresh("/dev/loop3").argv == ("losetup", "--set-capacity", "/dev/loop3")
    assert pt.loop_partition_path("/dev/loop3", 2) == "/dev/loop3p2"


@pytest.mark.parametrize("bad", ["/dev/sda", "/dev/loop", "loop0", "/dev/loop0p1", "/dev/loop0; rm"])
def test_only_loop_devices(bad: str) -> None:
    with pytest.raises(InvalidInput, match="loop device"):
        pt.losetup_detach(bad)


def test_bad_names_and_numbers() -> None:
    with pytest.raises(InvalidInput):
        pt.lv_partition_path("rl_build", "vmtest1", 0)
    with pytest.raises(InvalidInput):
        pt.mapper_name("rl build", "vmtest1")
