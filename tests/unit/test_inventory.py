"""The inventory: one libvirt listing (test driver) joined with one LVM report (captured)."""

from __future__ import annotations

import pytest

from kvmops.errors import SafetyError
from kvmops.facts import read_facts
from kvmops.guests.inventory import build_inventory, inventory_of, render_table
from kvmops.lvm import ops
from kvmops.lvm.paths import lv_path
from tests.unit.test_guest_testbed import Bed, ReplayRunner, bed, facts, lvm_state

__all__ = ["bed"]


@pytest.mark.parametrize(("source", "path"), [
    ("/dev/rl_build/vmtest1", "rl_build/vmtest1"),
    ("/dev/mapper/rl_build-vmtest1", "rl_build/vmtest1"),
    ("/dev/mapper/rl_build-vmvgcn--test2", "rl_build/vmvgcn-test2"),
    ("/dev/mapper/my--vg-lv--x", "my-vg/lv-x"),
    ("/dev/sda", None),
    ("/dev/disk/by-id/wwn-0x5000", None),
    ("/var/lib/libvirt/images/a.raw", None),
    ("/dev/mapper/nodash", None),
    (None, None),
])
def test_lv_path_of_disk_sources(source: str | None, path: str | None) -> None:
    assert lv_path(source) == path


def test_inventory_joins_guests_lvs_and_snapshots(bed: Bed) -> None:
    inv = build_inventory(bed.site, bed.host().virt.domains(), lvm_state())
    assert [g.name for g in inv.guests] == ["db1", "ext1", "web1"]
    web1 = inv.guest("web1")
    assert web1 is not None
    assert (web1.state, web1.active, web1.vcpus, web1.memory_kib, web1.bridges) == (
        "running", True, 2, 1048576, ("virbr1.2368",))
    (disk,) = web1.disks
    assert disk.lv is not None and disk.lv.path == "rl_build/vmtest2"
    assert [(s.name, s.data_percent) for s in disk.snapshots] == [("vmtest2_snap", 78.44)]
    assert inv.missing_disks == (("db1", "rl_build/vmgone"),)
    ext1 = inv.guest("ext1")
    assert ext1 is not None and not ext1.disks[0].missing  # a file disk is not an LV of the VG
    assert [lv.name for lv in inv.unused_lvs] == ["vmtest1"]  # the snapshot of vmtest2 is not "unused"
    assert inv.vg.free == 42949672960


def test_host_lvs_are_never_flagged_unused(bed: Bed) -> None:
    inv = build_inventory(bed.site, bed.host().virt.domains(), lvm_state(lvs="guide-host"))
    assert [lv.name for lv in inv.unused_lvs] == ["vmvgcn-test2"]  # not root, home, opt


def test_the_guards_know_the_running_guests_disks_from_the_facts(bed: Bed) -> None:
    host = bed.host()
    now = facts(host)
    assert now.running_disks == {"rl_build/vmtest2": "web1"}
    with pytest.raises(SafetyError, match="running guest web1"):
        ops.snapshot(now, "vmtest2")
    host.virt.destroy("web1")
    assert facts(host).running_disks == {}
    assert ops.snapshot(facts(host), "vmtest2").steps


def test_the_inventory_uses_one_listing_and_one_lvm_report(bed: Bed) -> None:
    host = bed.host(runner=ReplayRunner())
    inv = inventory_of(read_facts(host))
    commands = [r.command.split()[0] for r in host.runner.records]
    assert sorted(commands) == ["lvs", "vgs"]
    assert len(inv.guests) == 3


def test_table_shows_state_snapshots_flags_and_vg_free(bed: Bed) -> None:
    text = render_table(build_inventory(bed.site, bed.host().virt.domains(), lvm_state()))
    lines = text.splitlines()
    assert lines[0].split() == ["GUEST", "STATE", "AUTOSTART", "VCPUS", "MEMORY", "BRIDGES", "DISKS"]
    web1 = next(ln for ln in lines if ln.startswith("web1"))
    assert "running" in web1 and "virbr1.2368" in web1 and "rl_build/vmtest2 256.00 MiB" in web1
    assert any("snapshot vmtest2_snap 128.00 MiB 78.4% full" in ln for ln in lines)
    assert "! guest db1: disk LV rl_build/vmgone is MISSING" in lines
    assert "! LV rl_build/vmtest1 (512.00 MiB) is used by no guest" in lines
    assert lines[-1] == "VG rl_build: 40.00 GiB free of 300.00 GiB"
