"""guest-remove: refused on a running guest whoever calls, every confirmation checked before
the first change (libvirt's test driver, LVM simulated: tests/unit/test_guest_simlvm.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.errors import ConfirmationRequired, SafetyError
from kvmops.executor import Executor, confirmed
from kvmops.facts import read_facts
from kvmops.guests import lifecycle
from kvmops.procedures import guest_remove as proc
from kvmops.procedures.base import PreconditionFailed
from tests.unit.test_guest_simlvm import SimLvm
from tests.unit.test_guest_testbed import RUNNING, SHUTOFF, Bed

# old1 (shut off) on vmtest2, which has the snapshot vmtest2_snap; web1 runs on vmtest1
DOMAINS = (("old1", 1048576, 1, "/dev/rl_build/vmtest2", SHUTOFF),
           ("web1", 1048576, 1, "/dev/rl_build/vmtest1", RUNNING))


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    b = Bed(tmp_path, DOMAINS)
    b.xml_dir.mkdir()
    (b.xml_dir / "old1.xml").write_text("<domain><name>old1</name></domain>\n")
    yield b
    b.close()


def test_a_running_guest_is_refused_whoever_calls(bed: Bed) -> None:
    host = bed.host(runner=SimLvm())
    facts = read_facts(host, proc.wanted(bed.site, "web1"))
    with pytest.raises(PreconditionFailed, match="web1 is running: shut it down first"):
        proc.check(facts, "web1", True)
    for remove_disks in (True, False):  # the procedure itself refuses too, without the check
        with pytest.raises(SafetyError, match="web1 is running: shut it down first"):
            proc.procedure(facts, "web1", remove_disks)
    assert host.virt.info("web1").active


@pytest.mark.parametrize("confirm_disks", ["", "rl_build/vmtest2", "rl_build/vmtest2_snap",
                                           "rl_build/vmtest2_snap,rl_build/vmtest1"])
def test_a_wrong_confirm_disks_changes_nothing(bed: Bed, confirm_disks: str) -> None:
    sim = SimLvm()
    host = bed.host(runner=sim)
    facts = read_facts(host, proc.wanted(bed.site, "old1"))
    assert proc.disk_targets(facts, "old1") == "rl_build/vmtest2_snap,rl_build/vmtest2"
    remove = proc.procedure(facts, "old1", True)
    with pytest.raises(ConfirmationRequired, match="nothing was changed"):
        Executor(host, lambda _l: None).run_procedure(remove, confirmed("old1", confirm_disks))
    assert host.virt.exists("old1")  # still defined
    assert (bed.xml_dir / "old1.xml").exists() and not (bed.xml_dir / "old1.xml.undefined").exists()
    assert sim.changes == [] and {"vmtest2", "vmtest2_snap"} <= set(sim.names())
    assert not [r for r in host.runner.records if r.mutates and r.executed]


def test_with_every_confirmation_it_is_removed_snapshots_first(bed: Bed) -> None:
    sim = SimLvm()
    host = bed.host(runner=sim)
    facts = read_facts(host, proc.wanted(bed.site, "old1"))
    proc.check(facts, "old1", True)
    Executor(host, lambda _l: None).run_procedure(proc.procedure(facts, "old1", True),
                                                  confirmed("old1", proc.disk_targets(facts, "old1")))
    assert [a for a in sim.changes] == [("lvremove", "rl_build/vmtest2_snap"), ("lvremove", "rl_build/vmtest2")]
    verdict = proc.verify(read_facts(host, proc.verify_wanted(bed.site, "old1")), facts, "old1", True)
    assert verdict.ok, verdict.render()
    assert lifecycle.undefine(read_facts(host, proc.wanted(bed.site, "old1")), "old1").empty


def test_the_disks_can_stay(bed: Bed) -> None:
    sim = SimLvm()
    host = bed.host(runner=sim)
    facts = read_facts(host, proc.wanted(bed.site, "old1"))
    Executor(host, lambda _l: None).run_procedure(proc.procedure(facts, "old1", False), confirmed("old1"))
    assert not host.virt.exists("old1") and sim.changes == [] and "vmtest2" in sim.names()
    now = read_facts(host, proc.verify_wanted(bed.site, "old1"))
    assert proc.verify(now, facts, "old1", False).ok
    kept = proc.verify(now, facts, "old1", True)  # asked to remove them, they are there: not removed
    assert not kept.ok and "FAILED: rl_build/vmtest2 is gone" in kept.lines


def test_the_plan_names_the_disk_confirmation(bed: Bed) -> None:
    facts = read_facts(bed.host(runner=SimLvm()), proc.wanted(bed.site, "old1"))
    shown = proc.procedure(facts, "old1", True).preview[-1].render()
    assert "to remove the disks set confirm_disks='rl_build/vmtest2_snap,rl_build/vmtest2'" in shown
