"""Lab tier: kpartx on real LVs (device-mapper), which this CI kernel cannot do: mappings only
under /dev/mapper, refusal of an open LV, guest-resize's partition phase (sfdisk -N + kpartx -u
on the mapped LV) and filesystem phase, guest-inspect's kpartx -l.

Needs the ``lab_host`` fixture (tests/lab/conftest.py: a kvmops Host connected over SSH to
the lab VM, site VG ``rl_build``, apply enabled). Skips when that fixture is not there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kvmops.cmd import change, read
from kvmops.facts import grow as grow_facts
from kvmops.facts import read_facts
from kvmops.facts.disk import open_disk
from kvmops.facts.images import probe
from kvmops.host import Host
from kvmops.images import copy, grow, partitions
from kvmops.images import inspect as ins
from kvmops.procedures import disks
from tests.support.run import run_plan

pytestmark = pytest.mark.lab

LV = "vmimg-lab1"  # a dash: its mapper name is rl_build-vmimg--lab1
IMAGE = "/var/tmp/kvmops-lab-image.raw"


@pytest.fixture
def host(request: pytest.FixtureRequest) -> Host:
    try:
        lab: Host = request.getfixturevalue("lab_host")
    except pytest.FixtureLookupError:
        pytest.skip("no lab_host fixture (tests/lab/conftest.py) in this checkout")
    return lab


@pytest.fixture
def lv_with_image(host: Host) -> Iterator[str]:
    vg = host.site.vg
    host.run(change("truncate", "-s", "64M", IMAGE))
    host.run(change("sfdisk", "-q", IMAGE, stdin="label: gpt\nsize=20M, type=L\ntype=L\n"))
    host.run(change("lvcreate", "--name", LV, "--size", "80m", "--wipesignatures", "y", "--yes", vg))
    try:
        yield f"{vg}/{LV}"
    finally:
        host.run(read("kpartx", "-d", "-p", "p", partitions.lv_mapper_path(vg, LV)), check=False)
        host.run(change("lvremove", f"{vg}/{LV}", stdin="y\n"), check=False)
        host.run(change("rm", "-f", IMAGE), check=False)


def test_copy_then_kpartx_links_only_under_dev_mapper(host: Host, lv_with_image: str) -> None:
    vg = host.site.vg
    info = probe(host.runner, IMAGE)
    plan = copy.copy_plan(read_facts(host), LV, info)
    run_plan(host, plan, lv_with_image, progress=lambda _l: None)

    listed = partitions.parse_kpartx(host.run(partitions.kpartx_list(partitions.lv_mapper_path(vg, LV))).stdout)
    name = partitions.mapper_name(vg, LV)  # "rl_build-vmimg--lab1": dashes doubled
    assert [m.name for m in listed] == [f"{name}p1", f"{name}p2"]
    with open_disk(host.runner, read_facts(host), lv=lv_with_image) as disk:
        nodes = [p.node for p in disk.partitions]
        assert nodes == [partitions.lv_partition_path(vg, LV, 1), partitions.lv_partition_path(vg, LV, 2)]
        for node in nodes:
            assert host.run(read("test", "-b", node, ok=(0, 1))).returncode == 0
        assert host.run(read("test", "-e", f"/dev/{vg}/{LV}p1", ok=(0, 1))).returncode == 1
    for node in nodes:
        assert host.run(read("test", "-e", node, ok=(0, 1))).returncode == 1, "mapping left behind"


def test_mapping_refused_for_an_open_lv(host: Host, lv_with_image: str) -> None:
    """LVM's own open flag, read from the lab: an LV whose partitions are mapped elsewhere is
    open, and kvmops refuses to map (or copy onto, snapshot, remove) it, whoever asks."""
    from kvmops.errors import SafetyError

    # the image's partition table on the LV first: kpartx maps nothing on an empty LV (then nothing holds it open)
    run_plan(host, copy.copy_plan(read_facts(host), LV, probe(host.runner, IMAGE)), lv_with_image,
             progress=lambda _l: None)
    mapper = partitions.lv_mapper_path(host.site.vg, LV)
    host.run(change("kpartx", "-a", "-r", "-p", "p", mapper))
    try:
        assert host.run(read("test", "-b", f"{mapper}p1", ok=(0, 1))).returncode == 0, "kpartx mapped nothing"
        facts = read_facts(host)
        assert facts.lvm.is_open(facts.lvm.need(LV)) is True
        with pytest.raises(SafetyError, match="is open"), open_disk(host.runner, facts, lv=lv_with_image):
            pass
    finally:
        host.run(change("kpartx", "-d", "-p", "p", mapper))


def _root_fs_on_the_lv(host: Host, lv_path: str) -> None:
    """Copy a one-partition image onto the LV and make an ext4 root (with os-release) in it."""
    vg, lv = lv_path.split("/")
    host.run(change("sfdisk", "-q", IMAGE, stdin="label: dos\ntype=83\n"))
    run_plan(host, copy.copy_plan(read_facts(host), lv, probe(host.runner, IMAGE)), lv_path, progress=lambda _l: None)
    mapper = partitions.lv_mapper_path(vg, lv)
    host.run(change("kpartx", "-a", "-p", "p", mapper))
    try:
        part = partitions.lv_partition_path(vg, lv, 1)
        host.run(change("mkfs.ext4", "-q", "-L", "root", part))
        host.run(change("mkdir", "-p", "/mnt/kvmops-lab-root"))
        host.run(change("mount", part, "/mnt/kvmops-lab-root"))
        try:
            host.run(change("mkdir", "-p", "/mnt/kvmops-lab-root/etc"))
            host.run(change("cp", "/etc/os-release", "/mnt/kvmops-lab-root/etc/os-release"))
            # what `chroot MNT cat /etc/os-release` needs to find the root: cat and its libraries
            libs = [w for w in host.run(read("ldd", "/usr/bin/cat")).stdout.split() if w.startswith("/")]
            host.run(change("cp", "-L", "--parents", "/usr/bin/cat", *libs, "/mnt/kvmops-lab-root"))
        finally:
            host.run(change("umount", "/mnt/kvmops-lab-root"))
            host.run(change("rmdir", "/mnt/kvmops-lab-root"))
    finally:
        host.run(change("kpartx", "-d", "-p", "p", mapper))


def test_guest_resize_phases_on_a_kpartx_mapped_lv(host: Host, lv_with_image: str) -> None:
    """The partition phase is sfdisk -N on the LV's device + kpartx -u (growpart cannot grow a
    partition of a kpartx-mapped LV); the filesystem phase is planned from the sizes it leaves."""
    vg, lv = lv_with_image.split("/")
    _root_fs_on_the_lv(host, lv_with_image)
    host.run(change("lvresize", "--size", "160m", lv_with_image))
    seen = grow_facts.look(host.runner, read_facts(host), lv=lv_with_image)
    first, second = grow.preview(seen)
    assert [s.cmd.argv[0] for s in first.steps if s.cmd] == ["sfdisk", "kpartx"]
    assert [s.cmd.argv[0] for s in second.steps if s.cmd] == ["e2fsck", "resize2fs"]
    ran = disks.grow(host, read_facts(host), lv=lv_with_image, progress=lambda _l: None)
    assert [[s.cmd.argv[0] for s in p.steps if s.cmd] for p in ran] == [["sfdisk", "kpartx"], ["e2fsck", "resize2fs"]]
    after = grow_facts.look(host.runner, read_facts(host), lv=lv_with_image)
    assert after.room <= grow.SLACK and after.fs_bytes is not None and after.part_size - after.fs_bytes <= grow.SLACK
    assert after.fs_bytes > 150 << 20  # of the 160 MiB LV
    mapper = partitions.lv_mapper_path(vg, lv)
    assert host.run(read("test", "-e", f"{mapper}p1", ok=(0, 1))).returncode == 1, "mapping left behind"
    assert all(p.empty for p in disks.grow(host, read_facts(host), lv=lv_with_image, progress=lambda _l: None))


def test_inspect_lists_the_table_it_is_about_to_map(host: Host, lv_with_image: str) -> None:
    vg, lv = lv_with_image.split("/")
    run_plan(host, copy.copy_plan(read_facts(host), lv, probe(host.runner, IMAGE)), lv_with_image,
             progress=lambda _l: None)
    listed = host.run(ins.table_cmd(device=partitions.lv_mapper_path(vg, lv))).stdout
    name = partitions.mapper_name(vg, lv)
    assert [m.name for m in partitions.parse_kpartx(listed)] == [f"{name}p1", f"{name}p2"]
    assert host.run(read("test", "-e", partitions.lv_partition_path(vg, lv, 1), ok=(0, 1))).returncode == 1
