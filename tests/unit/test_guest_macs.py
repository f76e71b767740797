"""MAC addresses chosen by kvmops (issue 24 item 1): deterministic per site, guest and NIC, in
libvirt's locally administered 52:54:00 range, unique on the host, written into the domain
XML (libvirt keeps them), kept by a redefinition, a move and a restore; the gate refuses a
definition that repeats another guest's MAC."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kvmops.errors import InvalidInput, SafetyError
from kvmops.executor import Executor, Refused, confirmed
from kvmops.facts import read_facts
from kvmops.guests import lifecycle, macs
from kvmops.guests.spec import guest_spec
from kvmops.guests.xml import read_domain, render_domain_xml
from kvmops.hostfacts import Wanted
from kvmops.plan import Call, Plan
from kvmops.transfer.xmlmap import XmlMap, map_xml
from tests.unit.test_guest_testbed import Bed, bed

__all__ = ["bed"]


def test_a_mac_is_a_function_of_site_guest_and_nic() -> None:
    one = macs.derived("guide", "web2", 0)
    assert one == macs.derived("guide", "web2", 0)  # the same on every run
    others = {macs.derived("guide", "web2", 1), macs.derived("guide", "web3", 0), macs.derived("lab", "web2", 0),
              macs.derived("guide", "web2", 0, attempt=1)}
    assert one not in others and len(others) == 4
    assert one.startswith("52:54:00:") and macs.normal(one) == one


@pytest.mark.parametrize("guest", [f"g{i}" for i in range(40)])
def test_every_chosen_mac_is_unicast_and_locally_administered(guest: str) -> None:
    for mac in macs.choose("guide", guest, 4):
        first = int(mac[:2], 16)
        assert first & 0b10 and not first & 0b01  # 0x52: locally administered, unicast
        assert mac[:8] == "52:54:00" and len(mac) == 17 and mac == mac.lower()


def test_a_taken_mac_is_skipped_deterministically() -> None:
    free = macs.choose("guide", "web2", 2)
    taken = {free[0].upper()}  # as another guest's XML may spell it
    moved = macs.choose("guide", "web2", 2, taken)
    assert moved[0] == macs.derived("guide", "web2", 0, attempt=1) and moved[1] == free[1]
    assert moved == macs.choose("guide", "web2", 2, taken)  # the same way around it, every time
    # two NICs can never get one MAC, even if their hashes met
    assert len(set(macs.choose("guide", "web2", 8))) == 8


@pytest.mark.parametrize(("mac", "why"), [("52:54:00:12:34", "six hex octets"), ("01:00:5e:00:00:01", "multicast"),
                                          ("52:54:00:12:34:zz", "six hex octets"), ("", "six hex octets")])
def test_a_bad_mac_is_refused(mac: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        macs.normal(mac)


def test_the_spec_carries_one_mac_per_nic_into_the_xml(bed: Bed) -> None:
    spec = guest_spec(bed.site, "web2", vlans=(2368, 223), macs=("52:54:00:AA:00:01", "52:54:00:aa:00:02"))
    assert spec.macs == ("52:54:00:aa:00:01", "52:54:00:aa:00:02")
    xml = render_domain_xml(bed.site, spec)
    assert '<mac address="52:54:00:aa:00:01" />' in xml
    dom = read_domain(xml)
    assert dom.macs == spec.macs and dom.bridges == ("virbr1.2368", "virbr1.223")
    assert "mac: 52:54:00:aa:00:02" in dom.lines()
    with pytest.raises(InvalidInput, match="1 MAC address"):
        guest_spec(bed.site, "web2", vlans=(2368, 223), macs=("52:54:00:aa:00:01",))
    with pytest.raises(InvalidInput, match="given twice"):
        guest_spec(bed.site, "web2", vlans=(2368, 223), macs=("52:54:00:aa:00:01", "52:54:00:AA:00:01"))


def test_define_chooses_free_macs_and_libvirt_keeps_them(bed: Bed) -> None:
    host = bed.host()
    spec = guest_spec(bed.site, "test1", vlans=(2368, 223))  # its disk: the LV vmtest1
    facts = read_facts(host, lifecycle.define_wanted(bed.site, spec))
    plan = lifecycle.define(facts, spec)
    Executor(host, lambda _l: None).execute(plan, confirmed(""), facts=facts)
    want = macs.choose(bed.site.name, "test1", 2, facts.macs_taken())
    assert read_domain(host.virt.inactive_xml("test1")).macs == want  # libvirt's own XML: the MACs kvmops chose
    again = read_facts(host, lifecycle.define_wanted(bed.site, spec))
    assert lifecycle.define(again, spec).empty  # a re-run plans nothing: the same MACs
    assert lifecycle.with_macs(again, spec).macs == want


def test_a_redefinition_keeps_the_macs_libvirt_gave(bed: Bed) -> None:
    """db1 was defined without a MAC: libvirt made one. Defining it again keeps it."""
    host = bed.host()
    facts = read_facts(host, Wanted(files=(str(bed.xml_dir / "db1.xml"),)))
    (had,) = read_domain(facts.domain("db1").inactive_xml).macs  # type: ignore[union-attr]
    assert had
    spec = guest_spec(bed.site, "db1", memory="4g", vcpus=1, vlans=(2368,), disk_lv="vmgone")
    assert lifecycle.with_macs(facts, spec).macs == (had,)


def test_a_mac_another_guest_has_is_refused_by_define_and_by_the_gate(bed: Bed) -> None:
    host = bed.host()
    facts = read_facts(host, Wanted(files=(str(bed.xml_dir / "web2.xml"),)))
    (web1,) = facts.macs_by_guest["web1"]
    spec = guest_spec(bed.site, "web2", vlans=(2368,), disk_path="/var/tmp/web2.raw", macs=(web1,))
    with pytest.raises(SafetyError, match=f"{web1} \\(guest web1\\)"):
        lifecycle.define(facts, spec)
    # the gate refuses it whoever planned it (a moved or restored definition, any XML)
    plan = Plan("define web2", []).add("define web2", Call("define", "web2", "virsh define", xml=render_domain_xml(
        bed.site, spec)))
    with pytest.raises(Refused, match=r"would have the MAC address .* \(guest web1\) \[rule mac\]"):
        Executor(host, lambda _l: None).execute(plan, confirmed(""), facts=facts)
    assert not host.virt.exists("web2")


def test_a_moved_guest_keeps_its_macs_a_copy_gets_new_ones(bed: Bed) -> None:
    """guest-move maps the XML without a new identity; a restore under a new name with one."""
    spec = guest_spec(bed.site, "web2", vlans=(2368, 223), macs=macs.choose("guide", "web2", 2))
    xml = render_domain_xml(bed.site, spec)
    moved = XmlMap("web2", {"/dev/rl_build/vmweb2": "/dev/vg_guests/vmweb2"},
                   {"virbr1.2368": "br2368", "virbr1.223": "br223"}, "/usr/bin/qemu-system-x86_64", "kvm")
    assert read_domain(map_xml(xml, moved)).macs == spec.macs
    fresh = macs.choose("other", "web2-copy", 2)
    copied = read_domain(map_xml(xml, replace(moved, name="web2-copy", new_identity=True, macs=fresh)))
    assert copied.macs == fresh and not set(fresh) & set(spec.macs)
    dropped = read_domain(map_xml(xml, replace(moved, new_identity=True)))
    assert dropped.macs == ("", "")  # no MACs given: libvirt makes new ones
