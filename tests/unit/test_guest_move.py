"""guest-move as functions over the facts of two hosts: the checks, the stages and their plans
for a first run and for every state a re-run can find (the tags on the target's LVs), the
mapping of the definition, the refusals, and the stages' machinery (confirmations first,
cleanup on every path out, the source started again only when its copy never ran)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kvmops.errors import ConfirmationRequired, InvalidInput, KvmopsError, SafetyError
from kvmops.executor import Executor
from kvmops.guests import hostfile
from kvmops.guests.xml import read_domain
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.net.facts import NetFacts
from kvmops.net.iplink import Link
from kvmops.plan import Plan
from kvmops.procedures import guest_move as gm
from kvmops.procedures import move_stages as st
from kvmops.procedures.base import PreconditionFailed
from kvmops.procedures.stages import Stage, Staged, executors, run_staged
from kvmops.runners import LocalRunner
from kvmops.site import load_site, resolve_site
from kvmops.transfer.xmlmap import XmlMap, map_xml
from tests.support.facts import domain, empty_facts, host_facts

G = 1 << 30
SRC = load_site()  # VG rl_build, bridges virbr1.<VLAN>
DST = load_site(resolve_site("demo2"))  # VG vg_guests, bridges br<VLAN>
WHEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
FROM = "kvmops-move-from:build.galaxyproject.eu:rl_build/vmweb1"


def lv(name: str, vg: str, size: int = 10 * G, attr: str = "-wi-a-----", tags: tuple[str, ...] = (),
       origin: str = "") -> LV:
    return LV(name, vg, attr, size, origin, 0.0 if origin else None, WHEN, tags=tags)


def source(*extra: LV, active: bool = False, disks: tuple[str, ...] = ("/dev/rl_build/vmweb1",),
           bridges: tuple[str, ...] = ("virbr1.2368",), defined: bool = True, free: int = 500 * G) -> HostFacts:
    attr = "-wi-ao----" if active else "-wi-a-----"
    lvs = (lv("vmweb1", "rl_build", attr=attr), lv("root", "rl_build", 100 * G), *extra)
    doms = [domain("web1", *disks, active=active, bridges=bridges)] if defined else []
    return host_facts(LvmState(VG("rl_build", 900 * G, free, 4 << 20, len(lvs)), lvs), site=SRC, domains=doms,
                      paths={"/root/kvm/web1.xml": True, "/root/kvm/web1.xml.undefined": False})


def target(*lvs: LV, doms: tuple = (), bridges: tuple[str, ...] = ("br2367", "br2368"),  # type: ignore[type-arg]
           free: int = 1000 * G) -> HostFacts:
    net = NetFacts(links=tuple(Link(b, i, kind="bridge") for i, b in enumerate(bridges)))
    return host_facts(LvmState(VG("vg_guests", 2000 * G, free, 4 << 20, len(lvs)), lvs), site=DST, domains=doms,
                      net=net, files={"/root/kvm/web1.xml": None})


def both(src: HostFacts | None = None, dst: HostFacts | None = None) -> gm.Both:
    return gm.Both(src or source(), dst or target())


def copy_of(*tags: str) -> LV:
    return lv("vmweb1", "vg_guests", tags=(FROM, *tags))


def commands(plan: Plan) -> list[str]:
    return [s.text().splitlines()[-1] if s.transfer is None else s.transfer.display for s in plan.steps if s.effect]


def stage_plans(staged: Staged[gm.Both]) -> dict[str, Plan]:
    return {s.title: p for s, p in zip(staged.stages, staged.preview, strict=True)}


def test_a_first_move_plans_every_stage_in_order() -> None:
    staged = gm.procedure(both(source(active=True)), "web1", WHEN, remove_source_disks=True)
    plans = stage_plans(staged)
    assert list(plans) == ["shut the guest down", "snapshot its disks", "copy disk vda", "remove the snapshots",
                           "copy the guest's files", "define the guest on the target",
                           "start it there and verify that it boots", "undefine it on the source",
                           "remove the source LVs", "start the source guest again"]
    assert commands(plans["snapshot its disks"]) == [
        "lvcreate --snapshot --name vmweb1-20261201T1000Z --size 5g --addtag kvmops-move-snapshot rl_build/vmweb1"]
    copy = plans["copy disk vda"]
    assert commands(copy)[0] == (f"lvcreate --name vmweb1 --size 10g --addtag {FROM} --addtag kvmops-move-copying "
                                 "--wipesignatures y --yes vg_guests")
    t = copy.steps[1].transfer
    assert t is not None and not t.reuse and t.size == 10 * G
    assert t.display == ("build.galaxyproject.eu$ dd if=/dev/rl_build/vmweb1-20261201T1000Z bs=4M iflag=direct "
                         "status=none | demo2$ dd of=/dev/vg_guests/vmweb1 bs=4M iflag=fullblock oflag=direct "
                         "conv=fsync status=none")
    assert [e.display() for e in t.verify] == ["demo2$ openssl dgst -sha256 -r -- /dev/vg_guests/vmweb1"]  # once
    assert t.source_is_stream and t.source_sum is not None  # the snapshot: its sha256 is the stream's
    assert t.source_sum.display() == ("build.galaxyproject.eu$ openssl dgst -sha256 -r -- "
                                      "/dev/rl_build/vmweb1-20261201T1000Z")
    assert commands(copy)[2] == "lvchange --deltag kvmops-move-copying --addtag kvmops-move-copied vg_guests/vmweb1"
    assert staged.stages[3].always and staged.stages[-1].on_failure
    assert commands(plans["start the source guest again"]) == ["virsh start web1"]
    assert [s.target for p in staged.preview for s in p.steps if s.target] == ["web1", "rl_build/vmweb1"]


def test_the_definition_is_mapped_to_the_target_site() -> None:
    plans = stage_plans(gm.procedure(both(), "web1", WHEN))
    write = plans["define the guest on the target"].steps[0].cmd
    assert write is not None and write.argv[-1] == "/root/kvm/web1.xml" and write.stdin
    d = read_domain(write.stdin)
    assert d.disk_sources == ("/dev/vg_guests/vmweb1",) and d.bridges == ("br2368",)
    assert d.emulator == DST.emulator and d.domain_type == DST.domain_type


def test_the_xml_mapping_in_detail() -> None:
    xml = ("<domain type='kvm'><name>web1</name><uuid>6f1b3c2e-1d7a-4c55-9a54-3a2b1c0d0e01</uuid>"
           "<os><type arch='x86_64' machine='pc-q35-8.2'>hvm</type></os><devices>"
           "<emulator>/usr/libexec/qemu-kvm</emulator>"
           "<disk type='block' device='disk'><source dev='/dev/mapper/rl_build-vmweb1--data'/>"
           "<target dev='vdb'/></disk>"
           "<disk type='file' device='cdrom'><source file='/root/kvm/web1-seed.iso'/><target dev='sda'/></disk>"
           "<interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='virbr1.2368'/></interface>"
           "</devices></domain>")
    m = XmlMap("web2", {"/dev/mapper/rl_build-vmweb1--data": "/dev/vg_guests/vmweb2-data"}, {"virbr1.2368": "br2368"},
               "/usr/bin/qemu-system-x86_64", "qemu", new_identity=True, eject=frozenset({"/root/kvm/web1-seed.iso"}))
    out = map_xml(xml, m)
    d = read_domain(out)
    assert (d.name, d.domain_type, d.machine, d.emulator) == ("web2", "qemu", "q35", "/usr/bin/qemu-system-x86_64")
    assert d.disk_sources == ("/dev/vg_guests/vmweb2-data",) and d.cdrom is None and d.bridges == ("br2368",)
    assert d.uuid is None and "<mac" not in out
    kept = read_domain(map_xml(xml, replace(m, new_identity=False, eject=frozenset())))
    assert kept.uuid == "6f1b3c2e-1d7a-4c55-9a54-3a2b1c0d0e01" and kept.cdrom == "/root/kvm/web1-seed.iso"
    with pytest.raises(InvalidInput, match="has no place on the target"):
        map_xml(xml, replace(m, disks={}))


@pytest.mark.parametrize(("tags", "lvcreate", "reuse", "retag"), [
    (("kvmops-move-copying",), False, False, True),  # interrupted: streamed again into the same LV
    (("kvmops-move-copied",), False, True, False),  # complete: checked again, streamed only if it differs
])
def test_a_rerun_resumes_its_own_copy(tags: tuple[str, ...], lvcreate: bool, reuse: bool, retag: bool) -> None:
    b = both(dst=target(copy_of(*tags)))
    assert gm.disks(b, "web1")[0].state == tags[0]
    plan = stage_plans(gm.procedure(b, "web1", WHEN))["copy disk vda"]
    assert any(c.startswith("lvcreate") for c in commands(plan)) is lvcreate
    t = next(s.transfer for s in plan.steps if s.transfer)
    assert t.reuse is reuse and any(c.startswith("lvchange") for c in commands(plan)) is retag


def test_a_copy_the_target_ran_from_is_never_overwritten_and_the_move_finishes() -> None:
    moved = target(copy_of("kvmops-move-booted"),
                   doms=(domain("web1", "/dev/vg_guests/vmweb1", active=True, bridges=("br2368",)),))
    b = both(source(), moved)
    plans = stage_plans(gm.procedure(b, "web1", WHEN))
    for title in ("shut the guest down", "snapshot its disks", "copy disk vda", "remove the snapshots",
                  "define the guest on the target", "start it there and verify that it boots"):
        assert plans[title].empty, title
    assert commands(plans["undefine it on the source"])[0] == "virsh undefine web1"
    assert plans["start the source guest again"].empty  # its copy ran: the source stays off


def test_a_copy_that_ran_but_never_showed_a_login_prompt_is_not_taken_for_booted() -> None:
    running = target(copy_of("kvmops-move-started"), doms=(domain("web1", "/dev/vg_guests/vmweb1", active=True),))
    with pytest.raises(PreconditionFailed, match="never verified"):
        gm.procedure(both(source(), running), "web1", WHEN)


@pytest.mark.parametrize(("dst", "message"), [
    (target(lv("vmweb1", "vg_guests")), "name clash"),  # no tags: not this move's
    (target(lv("vmweb1", "vg_guests", tags=("kvmops-move-from:other:rl_build/vmweb1", "kvmops-move-copying"))),
     "name clash"),  # another source's copy
    (target(lv("vmweb1", "vg_guests", 20 * G, tags=(FROM, "kvmops-move-copying"))), "resized"),
    (target(doms=(domain("web1", "/dev/vg_guests/vmother"),)), "not this move's copy"),
    (target(free=5 * G), "free, the new LVs need 10.00 GiB"),
    (target(bridges=("br2367",)), "br2368, which does not exist there: create it first"),
])
def test_the_target_is_checked_first(dst: HostFacts, message: str) -> None:
    with pytest.raises((SafetyError, PreconditionFailed, KvmopsError), match=message):
        gm.check(both(source(), dst), "web1")


@pytest.mark.parametrize(("src", "message"), [
    (source(bridges=("virbr1.68",)), "VLAN 68, which is no network of the target site demo2"),
    (source(bridges=("br-lab",)), "no network of site"),
    (source(disks=("/var/lib/libvirt/images/web1.img",)), "not an LV of VG rl_build"),
    (source(disks=("/dev/rl_build/vmmissing",)), "does not exist"),
    (source(free=1 * G), "the snapshots for the copy need 5.00 GiB"),
])
def test_the_source_is_checked_first(src: HostFacts, message: str) -> None:
    with pytest.raises((InvalidInput, PreconditionFailed), match=message):
        gm.check(both(src, target()), "web1")


def test_two_running_copies_are_refused() -> None:
    dst = target(copy_of("kvmops-move-booted"), doms=(domain("web1", "/dev/vg_guests/vmweb1", active=True),))
    with pytest.raises(PreconditionFailed, match="runs on BOTH"):
        gm.check(both(source(active=True), dst), "web1")


def test_the_source_is_undefined_only_after_the_copy_booted() -> None:
    with pytest.raises(PreconditionFailed, match="has not booted"):
        st.undefine(both(), "web1")


def test_an_undefine_that_ran_but_failed_still_retires_the_kept_xml_on_a_rerun() -> None:
    gone = source(defined=False)  # virsh undefine ran, then the run failed: the kept XML is still in place
    assert commands(st.undefine(both(gone), "web1")) == [
        "mv --backup=numbered -- /root/kvm/web1.xml /root/kvm/web1.xml.undefined"]
    retired = replace(gone, paths={"/root/kvm/web1.xml": False, "/root/kvm/web1.xml.undefined": True})
    assert st.undefine(both(retired), "web1").empty


def test_a_move_that_removed_the_source_disks_is_recognised_as_done() -> None:
    gone = replace(source(defined=False), lvm=LvmState(source().lvm.vg, (lv("root", "rl_build", 100 * G),)),
                   paths={"/root/kvm/web1.xml": False, "/root/kvm/web1.xml.undefined": True})
    there = target(copy_of("kvmops-move-booted"), doms=(domain("web1", "/dev/vg_guests/vmweb1", active=True),))
    assert "moved to" in gm.check(both(gone, there), "web1")  # was: "a name clash"
    plans = stage_plans(gm.procedure(both(gone, there), "web1", WHEN, remove_source_disks=True))
    assert all(p.empty for p in plans.values()), {t: commands(p) for t, p in plans.items() if not p.empty}
    stranger = target(lv("vmweb1", "vg_guests"), doms=(domain("web1", "/dev/vg_guests/vmweb1", active=True),))
    with pytest.raises(SafetyError, match="name clash"):  # an untagged LV is still not this move's
        gm.check(both(gone, stranger), "web1")


def test_the_source_guest_is_started_again_only_when_its_copy_never_ran() -> None:
    assert commands(st.restart(both(), "web1", was_running=True)) == ["virsh start web1"]
    assert st.restart(both(), "web1", was_running=False).empty
    assert st.restart(both(source(active=True)), "web1", was_running=True).empty  # it runs
    ran = target(copy_of("kvmops-move-started"), doms=(domain("web1", "/dev/vg_guests/vmweb1"),))
    assert st.restart(both(source(), ran), "web1", was_running=True).empty


def test_leftover_snapshots_of_an_interrupted_run_are_replaced_and_removed() -> None:
    old = lv("vmweb1-20261130T0900Z", "rl_build", 5 * G, "swi-a-s---", (gm.SNAPSHOT_TAG,), origin="vmweb1")
    mine = lv("vmweb1-20261124T0815Z", "rl_build", 5 * G, "swi-a-s---", origin="vmweb1")  # the admin's: kept
    b = both(source(old, mine))
    plans = stage_plans(gm.procedure(b, "web1", WHEN))
    assert commands(plans["snapshot its disks"])[0] == "lvremove rl_build/vmweb1-20261130T0900Z <<< 'y\\n'"
    assert commands(st.cleanup(b, "web1")) == ["lvremove rl_build/vmweb1-20261130T0900Z <<< 'y\\n'"]
    assert gm.disk_targets(b, "web1") == "rl_build/vmweb1-20261124T0815Z,rl_build/vmweb1"


def test_the_verdict_of_a_move_judges_the_lvs_it_had_before() -> None:
    before = both(source(active=True))
    staged = gm.procedure(before, "web1", WHEN, remove_source_disks=True)
    assert "to remove the source LVs set confirm_disks='rl_build/vmweb1'" in staged.preview[-2].render()
    booted = copy_of(gm.BOOTED)
    undefined = replace(source(defined=False), paths={"/root/kvm/web1.xml.undefined": True})
    done = both(undefined, target(booted, doms=(domain("web1", "/dev/vg_guests/vmweb1", active=True),)))
    verdict = gm.verify(done, before, "web1", removed=False)
    assert verdict.ok, verdict.render()
    assert "ok: vg_guests/vmweb1 on demo2 is its disk, its copy checked and booted from" in verdict.lines
    not_moved = gm.verify(before, before, "web1", removed=False)
    assert not not_moved.ok and "FAILED: guest web1 runs on demo2" in not_moved.lines
    assert not gm.verify(done, before, "web1", removed=True).ok  # asked to remove the source LV: it is there


# -- the stages' machinery --------------------------------------------------------------------


def _hosts() -> dict[str, Host]:
    return {"source": Host(SRC, LocalRunner("src"), ""), "target": Host(DST, LocalRunner("dst"), "")}


def test_every_confirmation_is_checked_before_the_first_change() -> None:
    b = both(source(active=True))
    staged = gm.procedure(b, "web1", WHEN, remove_source_disks=True)
    hosts = _hosts()
    with pytest.raises(ConfirmationRequired, match="confirm='web1'.*confirm='rl_build/vmweb1'"):
        run_staged(staged, executors(hosts), lambda: b, frozenset())
    assert not hosts["source"].runner.records and not hosts["target"].runner.records


def _stage(title: str, on: str, ok: bool, folder: Path, **flags: bool) -> tuple[Stage[int], Plan]:
    """A stage that writes a file into its side's kept-XML folder (or, not ``ok``, fails to:
    the file's folder is a file)."""
    name = title if ok else "blocker/x"
    plan = Plan(title).add(title, hostfile.write_cmd(f"{folder}/{on}/{name}", title))
    return Stage(title, on, lambda _n: plan, **flags), plan


def _sides(tmp: Path) -> tuple[dict[str, Host], Callable[[int, str], HostFacts]]:
    """Both sides on this machine, each with its folder under ``tmp``; empty hosts for the gate."""
    sites = {side: replace(site, xml_dir=str(tmp / side)) for side, site in (("source", SRC), ("target", DST))}
    for side in sites:
        (tmp / side).mkdir()
    (tmp / "target" / "blocker").write_text("a file, not a folder")
    hosts = {side: Host(site, LocalRunner(side), "") for side, site in sites.items()}
    return hosts, lambda _n, side: empty_facts(sites[side])


def _written(tmp: Path) -> list[str]:
    return sorted(p.name for side in ("source", "target") for p in (tmp / side).iterdir() if p.name != "blocker")


def test_after_a_failure_only_cleanup_and_on_failure_stages_run(tmp_path: Path) -> None:
    hosts, facts = _sides(tmp_path)
    staged: Staged[int] = Staged("t", facts_of=facts)
    for stage, plan in (_stage("a", "source", True, tmp_path), _stage("b", "target", False, tmp_path),
                        _stage("c", "source", True, tmp_path), _stage("clean", "source", True, tmp_path, always=True),
                        _stage("again", "source", True, tmp_path, on_failure=True)):
        staged.add(stage, plan)
    with pytest.raises(KvmopsError, match="step 1 failed"):
        run_staged(staged, executors(hosts, lambda _: None), lambda: 0)
    assert _written(tmp_path) == ["a", "again", "clean"]  # not c


def test_without_a_failure_the_on_failure_stages_do_not_run(tmp_path: Path) -> None:
    hosts, facts = _sides(tmp_path)
    ok: Staged[int] = Staged("t", facts_of=facts)
    for stage, plan in (_stage("a", "source", True, tmp_path),
                        _stage("again", "source", True, tmp_path, on_failure=True)):
        ok.add(stage, plan)
    assert run_staged(ok, executors(hosts, lambda _: None), lambda: 0) == ["[source] 1. done: a"]
    assert _written(tmp_path) == ["a"]


def test_a_stage_planned_again_with_a_new_destructive_target_is_refused(tmp_path: Path) -> None:
    hosts, facts = _sides(tmp_path)
    destructive = Plan("x").add("replace", hostfile.write_cmd(f"{tmp_path}/source/x", "x"), target="rl_build/vmnew")
    staged: Staged[int] = Staged("t", facts_of=facts).add(Stage("x", "source", lambda _n: destructive),
                                                          Plan("x").noop("nothing"))
    with pytest.raises(ConfirmationRequired, match="planned again"):
        run_staged(staged, {"source": Executor(hosts["source"], lambda _: None)}, lambda: 0)
    assert _written(tmp_path) == []


def test_autostart_is_carried_to_the_target() -> None:
    src = source()
    on = replace(src, domains=tuple(replace(d, autostart=True) for d in src.domains))
    start = stage_plans(gm.procedure(both(on), "web1", WHEN))["start it there and verify that it boots"]
    assert commands(start)[:3] == ["lvchange --deltag kvmops-move-copied --addtag kvmops-move-started vg_guests/vmweb1",
                                   "virsh autostart web1", "virsh start web1"]
    plain = stage_plans(gm.procedure(both(), "web1", WHEN))["start it there and verify that it boots"]
    assert "virsh autostart web1" not in commands(plain)


def test_an_lv_the_target_cannot_make_of_the_same_size_is_refused() -> None:
    odd = source()
    odd = replace(odd, lvm=replace(odd.lvm, lvs=tuple(replace(x, size=10 * G + (4 << 20)) if x.name == "vmweb1" else x
                                                      for x in odd.lvm.lvs)))
    dst = target()
    big_extents = replace(dst, lvm=replace(dst.lvm, vg=replace(dst.lvm.vg, extent_size=32 << 20)))
    with pytest.raises(PreconditionFailed, match="not a whole number of the target VG's 32.00 MiB extents"):
        gm.check(both(odd, big_extents), "web1")


def test_a_guest_on_a_host_lv_is_never_copied_over_one() -> None:
    with pytest.raises(SafetyError, match="host LV"):
        gm.check(both(source(lv("home", "rl_build"), disks=("/dev/rl_build/home",))), "web1")
