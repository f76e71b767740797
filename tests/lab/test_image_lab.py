"""Lab tier: kpartx on real LVs (device-mapper), which this CI kernel cannot do.

Needs the ``lab_host`` fixture (tests/lab/conftest.py: a kvmops Host connected over SSH to
the lab VM, site VG ``rl_build``, apply enabled). Skips when that fixture is not there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kvmops.cmd import change, read
from kvmops.facts import read_facts
from kvmops.host import Host
from kvmops.images import copy, partitions
from kvmops.images.disk import open_disk
from kvmops.images.probe import probe
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

    mapper = partitions.lv_mapper_path(host.site.vg, LV)
    host.run(change("kpartx", "-a", "-r", "-p", "p", mapper))
    try:
        facts = read_facts(host)
        assert facts.lvm.is_open(facts.lvm.need(LV)) is True
        with pytest.raises(SafetyError, match="is open"), open_disk(host.runner, facts, lv=lv_with_image):
            pass
    finally:
        host.run(change("kpartx", "-d", "-p", "p", mapper))
