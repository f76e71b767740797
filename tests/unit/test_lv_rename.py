"""lv-rename: the LV renamed and every definition that names it updated (libvirt's, with its
UUID, and the kept XML), so the guest still starts; refused while it runs; every
confirmation first (libvirt's test driver, LVM simulated: tests/unit/test_guest_simlvm.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.errors import ConfirmationRequired, InvalidInput, SafetyError
from kvmops.executor import Executor, confirmed
from kvmops.facts import read_facts
from kvmops.guests.xml import read_domain
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.procedures import lv_rename as proc
from kvmops.procedures.base import PreconditionFailed
from tests.unit.test_guest_simlvm import SimLvm
from tests.unit.test_guest_testbed import RUNNING, SHUTOFF, Bed

DOMAINS = (("test2", 1048576, 1, "/dev/rl_build/vmtest2", SHUTOFF),
           ("web1", 1048576, 1, "/dev/rl_build/vmtest1", RUNNING))
KEPT = """<!-- kept by hand: guide 3.2 -->
<domain type='kvm'>
  <name>test2</name>
  <devices>
    <disk type='block' device='disk'><source dev='/dev/rl_build/vmtest2'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>
"""


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    b = Bed(tmp_path, DOMAINS)
    b.xml_dir.mkdir()
    (b.xml_dir / "test2.xml").write_text(KEPT)
    yield b
    b.close()


def facts_of(host: Host, old: str, new: str = "vmtest2-db") -> HostFacts:
    return read_facts(host, proc.wanted(read_facts(host), old, new))


def run(host: Host, old: str, new: str, confirm: str = "") -> None:
    facts = facts_of(host, old, new)
    Executor(host, lambda _l: None).run_procedure(proc.procedure(facts, old, new), confirmed(confirm))


def test_rename_updates_the_definition_and_the_guest_still_starts(bed: Bed) -> None:
    sim = SimLvm()
    host = bed.host(runner=sim)
    facts = facts_of(host, "vmtest2")
    assert "definitions to update: test2" in proc.check(facts, "vmtest2", "vmtest2-db")
    before = proc.uuids(facts, ("test2",))
    assert before["test2"]
    run(host, "vmtest2", "vmtest2-db", "test2")
    assert ("lvrename", "rl_build", "vmtest2", "vmtest2-db") in sim.changes
    defined = read_domain(host.virt.inactive_xml("test2"))
    assert defined.disk_sources == ("/dev/rl_build/vmtest2-db",) and defined.uuid == before["test2"]
    kept = (bed.xml_dir / "test2.xml").read_text()
    assert "/dev/rl_build/vmtest2-db" in kept and "vmtest2'" not in kept and "kept by hand" in kept
    verdict = proc.verify(read_facts(host, proc.verify_wanted(bed.site, ("test2",))), "vmtest2", "vmtest2-db", before)
    assert verdict.ok, verdict.render()
    host.virt.start("test2")
    assert host.virt.info("test2").state == "running"


def test_every_confirmation_comes_first(bed: Bed) -> None:
    sim = SimLvm()
    host = bed.host(runner=sim)
    facts = facts_of(host, "vmtest2")
    rename = proc.procedure(facts, "vmtest2", "vmtest2-db")
    assert [t for p in rename.preview for t in p.targets] == ["test2", "test2"]
    with pytest.raises(ConfirmationRequired, match="confirm='test2'"):
        Executor(host, lambda _l: None).run_procedure(rename, confirmed("rl_build/vmtest2"))
    assert sim.changes == [] and "vmtest2" in sim.names()
    assert read_domain(host.virt.inactive_xml("test2")).disk_sources == ("/dev/rl_build/vmtest2",)
    assert (bed.xml_dir / "test2.xml").read_text() == KEPT


def test_refused_while_the_guest_runs_whoever_calls(bed: Bed) -> None:
    sim = SimLvm()
    host = bed.host(runner=sim)
    facts = facts_of(host, "vmtest1", "vmweb1")
    with pytest.raises((PreconditionFailed, SafetyError), match="running"):
        proc.check(facts, "vmtest1", "vmweb1")
    with pytest.raises(SafetyError, match="running guest web1"):
        proc.procedure(facts, "vmtest1", "vmweb1")
    with pytest.raises(SafetyError, match="web1 is running"):
        proc.definition_plan(facts, "web1", "vmtest1", "vmweb1")
    assert sim.changes == []


@pytest.mark.parametrize(("old", "new", "message"), [
    ("vmtest2", "vmtest2", "is the old one"),
    ("vmtest2", "root", "host LV"),
    ("home", "vmhome", "host LV"),
    ("vmtest2", "vm/x", "LV name"),
])
def test_bad_names_are_refused(bed: Bed, old: str, new: str, message: str) -> None:
    with pytest.raises((InvalidInput, SafetyError), match=message):
        proc.names_of(bed.site, old, new)


def test_a_taken_name_is_refused(bed: Bed) -> None:
    facts = facts_of(bed.host(runner=SimLvm()), "vmtest2", "vmtest1")
    with pytest.raises(PreconditionFailed, match="vmtest1 exists already"):
        proc.check(facts, "vmtest2", "vmtest1")


def test_a_run_cut_short_after_the_rename_converges(bed: Bed) -> None:
    """The LV was renamed, the definitions not yet: running again only updates them."""
    sim = SimLvm()
    host = bed.host(runner=sim)
    (bed.xml_dir / "test2.xml").unlink()  # and no kept copy: it is written from the new definition
    sim.run(proc.ops.c.lvrename("rl_build", "vmtest2", "vmtest2-db"))
    sim.changes.clear()
    facts = facts_of(host, "vmtest2")
    assert "renamed to vmtest2-db already" in proc.check(facts, "vmtest2", "vmtest2-db")
    rename = proc.procedure(facts, "vmtest2", "vmtest2-db")
    assert rename.preview[0].empty
    Executor(host, lambda _l: None).run_procedure(rename, confirmed("test2"))
    assert sim.changes == []
    assert read_domain((bed.xml_dir / "test2.xml").read_text()).disk_sources == ("/dev/rl_build/vmtest2-db",)
    assert all(p.empty for p in proc.procedure(facts_of(host, "vmtest2"), "vmtest2", "vmtest2-db").preview)
