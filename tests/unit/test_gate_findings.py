"""What the gate properties found (tests/unit/test_gate_properties.py): each defect of the
safety gate they found, as a minimal example on hand-made facts, now fixed and kept as a
plain test (a defect found later goes into tests/support/gate_defects.py with its example
here marked ``xfail(strict=True)`` until it is fixed). The evidence that libvirt keeps what the
XML policy must refuse is a test of its own: libvirt's test driver, defined and read back.
"""

from __future__ import annotations

from collections.abc import Sequence

import libvirt
import pytest

from kvmops.cmd import change
from kvmops.guests.domain import DomainInfo
from kvmops.guests.spec import GuestSpec
from kvmops.guests.xml import render_domain_xml
from kvmops.hostfacts import HostFacts
from kvmops.lvm import ops
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.net.facts import NetFacts
from kvmops.net.iplink import Link
from kvmops.net.nmcli import Profile
from kvmops.plan import Call, Plan, Step
from kvmops.safety.effects import Where, effects
from kvmops.safety.rules import Context, Refusal, RunState, judge, judge_hold
from kvmops.safety.xmlpolicy import refusals as xml_refusals
from kvmops.site import load_site
from tests.support.facts import domain, host_facts
from tests.support.random_xml import GAPS

SITE = load_site()
VG_ = SITE.vg
GiB = 1 << 30
HOST = SITE.name


def lv(name: str, attr: str = "-wi-a-----", origin: str = "") -> LV:
    return LV(name, VG_, attr, 10 * GiB, origin, 5.0 if origin else None, None)


def facts(*lvs: LV, domains: Sequence[DomainInfo] = (), net: NetFacts | None = None) -> HostFacts:
    return host_facts(LvmState(VG(VG_, 1000 * GiB, 500 * GiB, 4 << 20, len(lvs)), lvs), domains=domains, net=net)


def gate(f: HostFacts, *plans: Sequence[Step]) -> list[Refusal]:
    """The gate's refusals of the plans of one run (as the executor judges them)."""
    run, out = RunState(), []
    for steps in plans:
        where = Where(HOST, VG_, lambda p: 10 * GiB, {})
        out += judge(effects(list(steps), where), Context(facts={HOST: f}), run)
    return out


def template(guest: str) -> str:
    return render_domain_xml(SITE, GuestSpec(guest, 1048576, 1, (SITE.networks[0].bridge,)))


def step(*argv: str, target: str | None = None, stdin: str | None = None) -> Step:
    return Step("step", change(*argv, stdin=stdin), target)


# -- the XML policy ------------------------------------------------------------------------------


def with_gap(kind: str) -> str:
    xml = template("web1")
    where = "</domain>" if kind in ("second-devices", "second-os", "fwcfg-file") else \
        "</os>" if kind in ("acpi-table", "nvram-template") else "</devices>"
    return xml.replace(where, GAPS[kind] + where, 1)


@pytest.mark.parametrize("kind", sorted(GAPS))
def test_libvirt_keeps_each_host_file_the_xml_policy_lets_through(kind: str) -> None:
    """The evidence: libvirt's domain parser (its test driver) keeps every one of them."""
    xml = with_gap(kind).replace('<domain type="kvm">', '<domain type="test">')
    conn = libvirt.open("test:///default")
    try:
        dom = conn.defineXML(xml)
        kept = dom.XMLDesc(0)
    finally:
        conn.close()
    assert any(p in kept for p in ("/etc/shadow", "/etc/motd", "/dev/sda", "/dev/tpm0", "/dev/input/event0",
                                   "/boot/vmlinuz")), kept


@pytest.mark.parametrize("kind", sorted(GAPS))
def test_the_xml_policy_refuses_host_files_and_devices_wherever_they_stand(kind: str) -> None:
    assert not xml_refusals(template("web1"), SITE, "web1")
    assert xml_refusals(with_gap(kind), SITE, "web1")


def test_libvirts_own_silent_audio_passes_and_every_sound_backend_is_refused() -> None:
    """libvirt (9.0 here) adds ``<audio id='1' type='none'/>`` to a definition by itself: a
    redefinition of a guest it read back must pass; a backend that writes a file or reaches a
    sound server must not, also with the same type and a child or an extra attribute."""
    silent = template("web1").replace("</devices>", "<audio id='1' type='none'/></devices>", 1)
    assert not xml_refusals(silent, SITE, "web1")
    for audio in ("<audio id='1' type='file' path='/etc/motd'/>", "<audio id='1' type='pulseaudio'/>",
                  "<audio id='1' type='none' path='/etc/motd'/>", "<audio id='1' type='none'><input/></audio>"):
        xml = template("web1").replace("</devices>", audio + "</devices>", 1)
        assert any("<audio>" in r for r in xml_refusals(xml, SITE, "web1")), audio


# -- LVs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attr", ["owi-ao----", "owi-XX----"])
def test_no_merge_into_an_origin_open_on_the_host(attr: str) -> None:
    """web1 is shut off; its LV is mapped with kpartx (open) or LVM cannot tell."""
    f = facts(lv("vmweb1", attr), lv("vmweb1-snap", "swi-a-s---", "vmweb1"),
              domains=[domain("web1", f"/dev/{VG_}/vmweb1")])
    snap = f"{VG_}/vmweb1-snap"
    assert [r.rule for r in gate(f, [step("lvconvert", "--mergesnapshot", snap, "--interval", "10", target=snap)])] \
        == ["lv-free"]


def test_no_merge_into_the_disk_of_a_guest_the_run_started() -> None:
    f = facts(lv("vmweb1", "owi-a-----"), lv("vmweb1-snap", "swi-a-s---", "vmweb1"),
              domains=[domain("web1", f"/dev/{VG_}/vmweb1")])
    snap = f"{VG_}/vmweb1-snap"
    refused = gate(f, [Step("start", Call("start", "web1")),
                       step("lvconvert", "--mergesnapshot", snap, "--interval", "10", target=snap)])
    assert [r.rule for r in refused] == ["lv-free"]


def new_guest_steps() -> list[Step]:
    return [step("lvcreate", "--name", "vmnew1", "--size", "10g", "--wipesignatures", "y", "--yes", VG_),
            Step("define", Call("define", "new1", xml=template("new1")))]


def test_an_lv_the_run_made_is_not_overwritten_under_the_guest_it_started() -> None:
    f = facts()
    refused = gate(f, [*new_guest_steps(), Step("start", Call("start", "new1")),
                       step("dd", "if=/dev/zero", f"of=/dev/{VG_}/vmnew1", "bs=4M", target=f"{VG_}/vmnew1")])
    assert [r.rule for r in refused] == ["lv-free"]


def test_an_lv_the_run_made_is_not_removed_while_a_guest_the_run_defined_names_it() -> None:
    refused = gate(facts(), [*new_guest_steps(), step("lvremove", f"{VG_}/vmnew1", stdin="y\n",
                                                      target=f"{VG_}/vmnew1")])
    assert [r.rule for r in refused] == ["lvremove"]


def test_lvremove_never_gets_y_also_for_an_lv_the_run_made() -> None:
    refused = gate(facts(), [new_guest_steps()[0], step("lvremove", "-y", f"{VG_}/vmnew1", target=f"{VG_}/vmnew1")])
    assert [r.rule for r in refused] == ["lvremove"]


def test_an_lv_of_unknown_open_state_stays_in_use_after_its_guest_stopped() -> None:
    f = facts(lv("vmweb1", "-wi-XX----"), domains=[domain("web1", f"/dev/{VG_}/vmweb1", active=True)])
    refused = gate(f, [Step("destroy", Call("destroy", "web1"), "web1"),
                       step("lvcreate", "--snapshot", "--name", "vmweb1-snap", "--size", "5g", f"{VG_}/vmweb1")])
    assert [r.rule for r in refused] == ["lv-free"]


def test_a_phase_holds_no_lv_an_earlier_phase_renamed_away() -> None:
    f = facts(lv("vmweb1"))
    run = RunState()
    where = Where(HOST, VG_, lambda p: 10 * GiB, {})
    renamed = judge(effects([step("lvrename", VG_, "vmweb1", "vmweb1-old")], where), Context(facts={HOST: f}), run)
    assert not renamed
    assert [r.rule for r in judge_hold(f"{VG_}/vmweb1", True, f, run, HOST)] == ["lv-exists"]


def test_a_snapshot_merges_into_its_origin_renamed_earlier_in_the_run() -> None:
    """Found by the CI profile (2026-12-06): LVM renames a snapshot's origin with its snapshot
    relation; the gate looked the origin up by its old name and refused the merge."""
    f = facts(lv("vmweb1", "owi-a-s---"), lv("vmweb1-snap", "swi-a-s---", origin="vmweb1"))
    assert gate(f, [step("lvrename", VG_, "vmweb1", "vmnew1"),
                    step("lvconvert", "--mergesnapshot", f"{VG_}/vmweb1-snap", target=f"{VG_}/vmweb1-snap")]) == []
    refused = gate(f, [step("lvrename", VG_, "vmweb1", "vmnew1"),
                       step("lvremove", f"{VG_}/vmnew1", target=f"{VG_}/vmnew1"),
                       step("lvconvert", "--mergesnapshot", f"{VG_}/vmweb1-snap", target=f"{VG_}/vmweb1-snap")])
    assert "merge" in [r.rule for r in refused]  # an origin removed after its rename is gone


# -- starts ----------------------------------------------------------------------------------------


def test_two_guests_on_one_image_file_are_not_both_started() -> None:
    shared = "/var/lib/libvirt/images/shared.qcow2"
    xml = ("<domain type='kvm'><name>{0}</name><devices><disk type='file' device='disk'>"
           f"<source file='{shared}'/><target dev='vda'/></disk></devices></domain>")
    doms = [DomainInfo(g, "shut off", False, True, True, xml.format(g), xml.format(g)) for g in ("a1", "b1")]
    refused = gate(facts(domains=doms), [Step("start", Call("start", "a1")), Step("start", Call("start", "b1"))])
    assert [(r.rule, r.step) for r in refused] == [("start-free", 2)]


def test_no_start_on_an_origin_whose_merge_the_run_started() -> None:
    f = facts(lv("vmweb1", "owi-a-----"), lv("vmweb1-snap", "swi-a-s---", "vmweb1"),
              domains=[domain("web1", f"/dev/{VG_}/vmweb1")])
    snap = f"{VG_}/vmweb1-snap"
    refused = gate(f, [step("lvconvert", "--mergesnapshot", snap, "--interval", "10", target=snap),
                       Step("start", Call("start", "web1"))])
    assert [(r.rule, r.step) for r in refused] == [("start-free", 2)]


# -- what the gate refuses but may not ------------------------------------------------------------


def test_guest_creates_empty_seed_file_is_a_known_change() -> None:
    """guest-create with setup=nocloud makes its seed file this way (kvmops.images.nocloud)."""
    assert not gate(facts(), [step("install", "-D", "-m", "0600", "/dev/null", f"{SITE.seed_dir}/new1-seed.iso")])


def test_activating_the_vlan_port_of_a_bridge_with_guests_is_no_reactivation_of_the_bridge() -> None:
    """ensure-network's repair of a port that is down, on a bridge a running guest is plugged into."""
    bridge = SITE.networks[0].bridge
    vid = SITE.networks[0].vlan
    net = NetFacts(profiles=(Profile(bridge, "uuid-b", "bridge", bridge, device=bridge),
                             Profile(f"{bridge}-port", "uuid-p", "vlan", f"{SITE.uplink}.{vid}", master=bridge,
                                     slave_type="bridge", vlan_id=vid, vlan_parent=SITE.uplink)),
                   links=(Link(bridge, 10, kind="bridge"), Link("vnet0", 11, kind="tun", master=bridge)))
    f = facts(lv("vmweb1"), domains=[domain("web1", f"/dev/{VG_}/vmweb1", active=True, bridges=[bridge])], net=net)
    assert not gate(f, [step("nmcli", "connection", "up", "uuid", "uuid-p")])


def test_a_guest_is_restarted_in_one_run() -> None:
    """Its LV is open while it runs (its own QEMU holds it); after the destroy it is not."""
    f = facts(lv("vmweb1", "-wi-ao----"), domains=[domain("web1", f"/dev/{VG_}/vmweb1", active=True)])
    assert not gate(f, [Step("destroy", Call("destroy", "web1"), "web1"), Step("start", Call("start", "web1"))])


def test_a_merge_after_the_run_stopped_the_guest() -> None:
    f = facts(lv("vmweb1", "owi-ao----"), lv("vmweb1-snap", "swi-a-s---", "vmweb1"),
              domains=[domain("web1", f"/dev/{VG_}/vmweb1", active=True)])
    snap = f"{VG_}/vmweb1-snap"
    assert not gate(f, [Step("destroy", Call("destroy", "web1"), "web1"),
                        step("lvconvert", "--mergesnapshot", snap, "--interval", "10", target=snap)])


# -- what the planners leave to the gate ------------------------------------------------------------


def test_growing_a_running_guests_disk_is_planned_with_blockresize() -> None:
    f = facts(lv("vmweb1", "-wi-ao----"), domains=[domain("web1", f"/dev/{VG_}/vmweb1", active=True)])
    plan: Plan = ops.resize(f, "vmweb1", 20 * GiB)
    assert not gate(f, plan.steps)
