"""The guest lifecycle on libvirt's test driver (one node file per test) with a real runner
writing the kept XML file into a temp xml_dir. Outcomes are read back from libvirt and disk."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import libvirt
import pytest

from kvmops import guestlive
from kvmops import virt as virt_module
from kvmops.errors import ConfirmationRequired, InvalidInput, LibvirtError, NotFound, SafetyError
from kvmops.executor import StepFailed
from kvmops.guests import lifecycle
from kvmops.guests.spec import GuestSpec, guest_spec
from kvmops.guests.xml import read_domain
from kvmops.host import Host
from kvmops.plan import Plan
from tests.support.run import run_plan
from tests.unit.test_guest_testbed import Bed, ReplayRunner, bed, facts
from tests.unit.test_guest_virt import hostile_collector

__all__ = ["bed"]


def spec(b: Bed, name: str = "test1", **kw: object) -> GuestSpec:
    args: dict[str, object] = {"memory": "1g", "vcpus": 2, "vlans": (2368,)}
    args.update(kw)
    return guest_spec(b.site, name, **args)  # type: ignore[arg-type]


def plan_define(host: Host, s: GuestSpec) -> Plan:
    """The define plan from the host's facts, read once (as the CLI and runbooks do)."""
    return lifecycle.define(facts(host, lifecycle.define_wanted(host.site, s)), s)


def plan_undefine(host: Host, name: str) -> Plan:
    return lifecycle.undefine(facts(host, lifecycle.undefine_wanted(host.site, name)), name)


def define(host: Host, s: GuestSpec, confirm: str | None = None) -> list[str]:
    return run_plan(host, plan_define(host, s), confirm)


def names_of(host: Host) -> list[str]:
    """Guests on this host's connection (each new test:/// connection starts afresh)."""
    return [d.name for d in host.virt.domains()]


# -- define ----------------------------------------------------------------------------------


def test_define_writes_the_file_then_defines_and_converges(bed: Bed) -> None:
    host = bed.host()
    define(host, spec(bed))
    f = bed.xml_dir / "test1.xml"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    kept = read_domain(f.read_text())
    assert (kept.memory_kib, kept.vcpus, kept.bridges) == (1048576, 2, ("virbr1.2368",))
    live = read_domain(host.virt.inactive_xml("test1"))
    assert (live.memory_kib, live.vcpus, live.disk_sources) == (1048576, 2, ("/dev/rl_build/vmtest1",))
    assert host.virt.info("test1").state == "shut off"
    again = plan_define(host, spec(bed))
    assert again.empty, again.render()


def test_define_in_plan_mode_changes_nothing(bed: Bed) -> None:
    host = bed.host(apply=False)
    plan = plan_define(host, spec(bed))
    text = plan.render()
    assert "install -D -m 0600 /dev/stdin" in text and "virsh define" in text
    run_plan(host, plan)
    assert not (bed.xml_dir / "test1.xml").exists()
    assert "test1" not in names_of(host)


def test_replacing_a_different_definition_needs_confirm_and_shows_the_diff(bed: Bed) -> None:
    host = bed.host()
    define(host, spec(bed))
    before = (bed.xml_dir / "test1.xml").read_text()
    uuid = host.virt.uuid("test1")
    plan = plan_define(host, spec(bed, memory="2g", vlans=(2368, 223)))
    text = plan.render()
    assert "-memory: 1048576 KiB" in text and "+memory: 2097152 KiB" in text
    assert "+bridge: virbr1.223" in text
    assert plan.targets == ["test1", "test1"]
    with pytest.raises(ConfirmationRequired, match="confirm='test1'"):
        run_plan(host, plan, "test2")
    assert (bed.xml_dir / "test1.xml").read_text() == before
    assert read_domain(host.virt.inactive_xml("test1")).memory_kib == 1048576
    run_plan(host, plan, "test1")
    assert read_domain(host.virt.inactive_xml("test1")).bridges == ("virbr1.2368", "virbr1.223")
    assert read_domain((bed.xml_dir / "test1.xml").read_text()).memory_kib == 2097152
    assert host.virt.uuid("test1") == uuid  # the same guest, redefined


def test_a_different_kept_file_alone_also_needs_confirm(bed: Bed) -> None:
    bed.xml_dir.mkdir()
    (bed.xml_dir / "test1.xml").write_text("<domain type='kvm'><name>test1</name></domain>\n")
    plan = plan_define(bed.host(), spec(bed))
    assert plan.targets == ["test1"]
    assert "differs from the new definition" in plan.render()


def test_define_refuses_a_running_guest_with_other_settings(bed: Bed) -> None:
    host = bed.host()
    running = guest_spec(bed.site, "web1", memory="1g", vcpus=2, vlans=(2368,), disk_lv="vmtest2")
    with pytest.raises(SafetyError, match="web1 is running.*shutdown web1"):
        plan_define(host, running)
    assert not bed.xml_dir.exists()
    assert read_domain(host.virt.inactive_xml("web1")).memory_kib == 1048576


# -- bad input: clear errors, nothing changed ------------------------------------------------


def _refused(b: Bed, build: object, err: type[Exception], match: str) -> None:
    host = b.host()
    before = names_of(host)
    with pytest.raises(err, match=match):
        plan_define(host, build(b) if callable(build) else build)  # type: ignore[arg-type]
    assert names_of(host) == before
    assert not b.xml_dir.exists()
    assert not [r for r in host.runner.records if r.mutates]


@pytest.mark.parametrize(("build", "err", "match"), [
    (lambda b: spec(b, vlans=(9,)), NotFound, "VLAN 9 is not a network"),
    (lambda b: spec(b, vlans=(), bridges=("virbr0",)), NotFound, "bridge 'virbr0' is not a network"),
    (lambda b: GuestSpec("test1", 1024, 1, ("virbr0",)), NotFound, "bridge 'virbr0'"),
    (lambda b: spec(b, memory="9g"), InvalidInput, "host has 8.00 GiB"),
    (lambda b: spec(b, vcpus=5), InvalidInput, "4 CPUs"),
    (lambda b: spec(b, name="test9"), NotFound, "rl_build/vmtest9 of guest test9 does not exist"),
    (lambda b: spec(b, data_lvs=("vmnope",)), NotFound, "rl_build/vmnope"),
    (lambda b: spec(b, disk_lv="root"), SafetyError, "host LV"),
    (lambda b: spec(b, disk_lv="vmtest2"), SafetyError, "web1 already uses /dev/rl_build/vmtest2"),
    (lambda b: spec(b, cdrom="/nonexistent/seed.iso"), NotFound, "CD-ROM image /nonexistent/seed.iso"),
])
def test_bad_input_is_refused_before_anything_changes(bed: Bed, build: object, err: type[Exception],
                                                      match: str) -> None:
    _refused(bed, build, err, match)


@pytest.mark.parametrize(("kw", "match"), [
    ({"memory": "0"}, "memory.*larger than zero"),
    ({"memory": "-1g"}, "memory"),
    ({"memory": "2x"}, "memory"),
    ({"vcpus": 0}, "vCPUs .* 1 or more"),
    ({"vcpus": -2}, "vCPUs"),
    ({"vlans": ()}, "at least one bridge"),
    ({"vlans": (2368, 2368)}, "given twice"),
])
def test_bad_values_never_make_a_spec(bed: Bed, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        spec(bed, **kw)


@pytest.mark.parametrize("name", ["", "-x", "a b", "x/y", "a..b", "x" * 49])
def test_bad_names_never_make_a_spec(bed: Bed, name: str) -> None:
    with pytest.raises(InvalidInput):
        spec(bed, name=name)


def test_define_plans_from_facts_read_once(bed: Bed) -> None:
    host = bed.host(runner=ReplayRunner())
    plan = plan_define(host, spec(bed))
    assert [r.command.split()[0] for r in host.runner.records if not r.mutates].count("lvs") == 1
    assert plan.steps[-1].reason == "define guest test1 in libvirt"
    with pytest.raises(NotFound, match="vmtest9"):
        plan_define(host, spec(bed, name="test9"))


# -- start, autostart, console ---------------------------------------------------------------


def test_start_and_autostart(bed: Bed) -> None:
    host = bed.host()
    plan = lifecycle.start(facts(host), "db1")
    assert "virsh start db1" in plan.render()
    run_plan(host, plan, progress=lambda _l: None)
    assert host.virt.info("db1").state == "running"
    assert lifecycle.start(facts(host), "db1").empty
    assert not host.virt.info("db1").autostart
    run_plan(host, lifecycle.autostart(facts(host), "db1", True), progress=lambda _l: None)
    assert host.virt.info("db1").autostart
    assert lifecycle.autostart(facts(host), "db1", True).empty
    assert "virsh autostart --disable db1" in lifecycle.autostart(facts(host), "db1", False).render()
    run_plan(host, lifecycle.autostart(facts(host), "db1", False), progress=lambda _l: None)
    assert not host.virt.info("db1").autostart
    assert host.virt.info("db1").state == "running"  # autostart does not stop or start


@pytest.mark.parametrize(("fixture", "said"), [
    ("small-guest-one-level-tcg", "guest db1 booted: login prompt after 12 s"),
    ("small-guest-nested-tcg-first-90s", "guest db1: boot NOT verified in 12 s (it runs, as libvirt says"),
])
def test_start_with_a_console_says_booted_only_on_a_login_prompt(bed: Bed, monkeypatch: pytest.MonkeyPatch,
                                                                 fixture: str, said: str) -> None:
    text = (Path(__file__).parent.parent / "fixtures" / "console" / f"{fixture}.log").read_text(errors="replace")
    monkeypatch.setattr(guestlive, "read_console", lambda *_a, **_k: text)
    ticks = iter([0.0, 12.0])
    monkeypatch.setattr(guestlive, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    host = bed.host()
    plan = lifecycle.start(facts(host), "db1", console_seconds=60)
    assert "until a login prompt" in plan.render()
    lines: list[str] = []
    run_plan(host, plan, progress=lines.append)
    assert any(ln.startswith(said) for ln in lines), lines
    assert host.virt.info("db1").state == "running"  # not booted is no failed start: it runs


def test_start_in_plan_mode_starts_nothing(bed: Bed) -> None:
    host = bed.host(apply=False)
    run_plan(host, lifecycle.start(facts(host), "db1"))
    assert host.virt.info("db1").state == "shut off"


def test_unknown_guest_is_not_found_with_advice(bed: Bed) -> None:
    with pytest.raises(NotFound, match="no guest 'nosuch' on testhost.*kvmops guest list"):
        lifecycle.start(facts(bed.host()), "nosuch")


def test_console_hint_and_unsupported_console_reading(bed: Bed) -> None:
    host = bed.host()
    assert guestlive.console_hint(host, "web1").startswith("virsh console web1    # CTRL-] detaches")
    with pytest.raises(LibvirtError, match="virsh console web1") as info:
        guestlive.read_console(host, "web1", 0.1)
    assert info.value.code == 3  # type: ignore[attr-defined]
    with pytest.raises(LibvirtError, match="db1 is shut off: start it first"):
        guestlive.read_console(host, "db1", 0.1)


@contextmanager
def _event_loop_running() -> Iterator[None]:
    """libvirt's event loop started and seen dispatching (a timer fired in its thread)."""
    virt_module._event_loop()
    fired = threading.Event()
    timer = libvirt.virEventAddTimeout(1, lambda *_args: fired.set(), None)
    try:
        assert fired.wait(5), "libvirt's event loop does not run"
        yield
    finally:
        libvirt.virEventRemoveTimeout(timer)


@pytest.mark.parametrize("before", ["nothing", "the event loop", "a hostile collector"])
def test_start_with_console_on_a_driver_without_consoles_says_what_to_do(bed: Bed, before: str) -> None:
    """Issue 13: the hint, whatever ran before (decided by the driver; libvirt's error code
    kept from the cycle collector, which once turned it into "virDomainOpenConsole() failed")."""
    host = bed.host()
    world = {"nothing": nullcontext, "the event loop": _event_loop_running,
             "a hostile collector": lambda: hostile_collector(host.virt.conn)}[before]
    with world(), pytest.raises(StepFailed, match=r"step 2 .*cannot open consoles.*virsh console db1"):
        run_plan(host, lifecycle.start(facts(host), "db1", console_seconds=0.1), progress=lambda _l: None)
    assert host.virt.info("db1").state == "running"  # step 1 stays done


# -- shutdown, destroy, undefine -------------------------------------------------------------


def test_shutdown_waits_for_shut_off(bed: Bed) -> None:
    host = bed.host()
    said: list[str] = []
    run_plan(host, lifecycle.shutdown(facts(host), "web1", timeout=5), progress=said.append)
    assert host.virt.info("web1").state == "shut off"
    assert any("waiting up to 5 s" in s for s in said)
    assert lifecycle.shutdown(facts(host), "web1").empty


def test_destroy_needs_confirm(bed: Bed) -> None:
    host = bed.host()
    plan = lifecycle.destroy(facts(host), "web1")
    assert plan.targets == ["web1"]
    with pytest.raises(ConfirmationRequired):
        run_plan(host, plan)
    assert host.virt.info("web1").active
    run_plan(host, plan, "web1")
    assert host.virt.info("web1").state == "shut off"
    assert lifecycle.destroy(facts(host), "web1").empty


def test_undefine_keeps_disks_and_renames_the_file(bed: Bed) -> None:
    host = bed.host()
    define(host, spec(bed))
    with pytest.raises(SafetyError, match="web1 is running"):
        plan_undefine(host, "web1")
    plan = plan_undefine(host, "test1")
    assert "disks are never touched: /dev/rl_build/vmtest1" in plan.render()
    with pytest.raises(ConfirmationRequired):
        run_plan(host, plan, "web1")
    assert "test1" in names_of(host)
    run_plan(host, plan, "test1")
    with pytest.raises(NotFound):
        host.virt.domain("test1")
    assert sorted(p.name for p in bed.xml_dir.iterdir()) == ["test1.xml.undefined"]
    assert not any(r.mutates and "lv" in r.command.split()[0] for r in host.runner.records)  # disks untouched
    assert plan_undefine(host, "test1").empty


def test_undefine_twice_keeps_numbered_backups(bed: Bed) -> None:
    host = bed.host()
    for memory in ("1g", "2g"):
        define(host, spec(bed, memory=memory))
        run_plan(host, plan_undefine(host, "test1"), "test1")
    kept = sorted(p.name for p in bed.xml_dir.iterdir())
    assert kept == ["test1.xml.undefined", "test1.xml.undefined.~1~"]
    assert read_domain((bed.xml_dir / "test1.xml.undefined").read_text()).memory_kib == 2097152


# -- guestinfo -------------------------------------------------------------------------------


def test_guestinfo_messages(bed: Bed) -> None:
    host = bed.host()
    with pytest.raises(LibvirtError, match="db1 is shut off: guestinfo needs a running guest"):
        guestlive.guest_info(host, "db1")
    with pytest.raises(LibvirtError, match="cannot ask a guest agent") as info:
        guestlive.guest_info(host, "web1")
    assert info.value.code == 3  # type: ignore[attr-defined]


def test_guests_lists_every_guest(bed: Bed) -> None:
    rows = {d.name: (d.state, d.autostart) for d in facts(bed.host()).domains}
    assert rows == {"web1": ("running", False), "db1": ("shut off", False), "ext1": ("shut off", False)}
