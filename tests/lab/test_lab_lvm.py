"""What this machine's kernel cannot do, proven in the lab through kvmops' own LVM plans:
snapshot, merge (the data really reverts), remove with confirm, kpartx -a/-d on an LV."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kvmops.cmd import change, read
from kvmops.errors import ConfirmationRequired
from kvmops.facts import read_facts
from kvmops.facts.lvm import read_state
from kvmops.host import Host
from kvmops.lvm import ops
from kvmops.units import parse_size
from tests.support.run import run_plan

pytestmark = pytest.mark.lab

BLOCK = 4096


def write_block(host: Host, device: str, text: str) -> None:
    """``dd of=DEVICE bs=4096 count=1 conv=fsync oflag=direct`` fed one padded block."""
    data = text.ljust(BLOCK, ".")
    host.run(change("dd", f"of={device}", f"bs={BLOCK}", "count=1", "iflag=fullblock",
                    "oflag=direct", "conv=fsync", "status=none", stdin=data))


def read_block(host: Host, device: str) -> str:
    """``dd if=DEVICE bs=4096 count=1 iflag=direct`` (bypasses the page cache)."""
    out = host.run(read("dd", f"if={device}", f"bs={BLOCK}", "count=1", "iflag=direct", "status=none"))
    return out.stdout.rstrip(".")


def remove_lv(host: Host, lv: str) -> None:
    site = host.site
    for snap in read_state(host.runner, site.vg).snapshots_of(lv):
        run_plan(host, ops.remove(read_facts(host), snap.name), snap.path, progress=lambda m: None)
    run_plan(host, ops.remove(read_facts(host), lv), f"{site.vg}/{lv}", progress=lambda m: None)


@pytest.fixture
def scratch_lv(lab_host: Host, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh guest LV (64 MiB) created by ops.create; removed by ops.remove afterwards."""
    lv = "vmlab" + request.node.name.removeprefix("test_").replace("_", "")[:20]
    plan = ops.create(read_facts(lab_host), lv, parse_size("64m"))
    run_plan(lab_host, plan, progress=lambda m: None)
    try:
        yield lv
    finally:
        remove_lv(lab_host, lv)


def test_snapshot_merge_reverts_the_data(lab_host: Host, scratch_lv: str) -> None:
    site, lv = lab_host.site, scratch_lv
    dev = f"/dev/{site.vg}/{lv}"
    write_block(lab_host, dev, "BEFORE the snapshot")

    run_plan(lab_host, ops.snapshot(read_facts(lab_host), lv, parse_size("32m")), progress=lambda m: None)
    state = read_state(lab_host.runner, site.vg)
    (snap,) = state.snapshots_of(lv)
    assert snap.is_snapshot and snap.origin == lv

    write_block(lab_host, dev, "AFTER the snapshot")
    assert read_block(lab_host, dev) == "AFTER the snapshot"
    assert (read_state(lab_host.runner, site.vg).need(snap.name).data_percent or 0) > 0

    merge = ops.merge(read_facts(lab_host), snap.name, interval=1)
    with pytest.raises(ConfirmationRequired):
        run_plan(lab_host, merge, None)
    run_plan(lab_host, merge, snap.path, progress=lambda m: None)  # the confirmation names the snapshot

    assert read_block(lab_host, dev) == "BEFORE the snapshot"
    state = read_state(lab_host.runner, site.vg)
    assert state.get(snap.name) is None
    assert not state.need(lv).merging


def test_remove_needs_the_exact_confirm(lab_host: Host, scratch_lv: str) -> None:
    site, lv = lab_host.site, scratch_lv
    plan = ops.remove(read_facts(lab_host), lv)
    for wrong in (None, site.vg, f"{site.vg}/other"):
        with pytest.raises(ConfirmationRequired):
            run_plan(lab_host, plan, wrong)
    assert read_state(lab_host.runner, site.vg).get(lv) is not None
    run_plan(lab_host, plan, f"{site.vg}/{lv}", progress=lambda m: None)
    assert read_state(lab_host.runner, site.vg).get(lv) is None


def test_kpartx_maps_and_unmaps_the_partitions_of_an_lv(lab_host: Host, scratch_lv: str) -> None:
    site, lv = lab_host.site, scratch_lv
    dev = f"/dev/{site.vg}/{lv}"
    part = f"/dev/mapper/{site.vg}-{lv}1"
    lab_host.run(change("sfdisk", "--quiet", "--label", "dos", dev, stdin=",,L\n"))
    listed = lab_host.run(read("kpartx", "-l", dev)).stdout
    assert listed.startswith(f"{site.vg}-{lv}1 : 0 ")
    try:
        lab_host.run(change("kpartx", "-a", "-v", dev))
        assert lab_host.run(read("test", "-b", part, ok=(0, 1))).returncode == 0
        lab_host.run(change("mkfs.ext4", "-q", part))
        blkid = lab_host.run(read("blkid", "-o", "value", "-s", "TYPE", part)).stdout.strip()
        assert blkid == "ext4"
    finally:
        lab_host.run(change("kpartx", "-d", "-v", dev))
    assert lab_host.run(read("test", "-e", part, ok=(0, 1))).returncode == 1
