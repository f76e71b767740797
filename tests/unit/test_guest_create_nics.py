"""guest-create's NICs (issue 24): a static address on any NIC, one per VLAN, the default route
on one and DNS once; a MAC for every NIC chosen before the guest exists, shown in the plan and
the DHCP reminder, written into the definition, matched by the seed's network-config and the
tweaks; every parameter checked before anything is read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from kvmops.errors import InvalidInput
from kvmops.executor import Executor, confirmed
from kvmops.facts import read_facts
from kvmops.fleet.hosts import FleetHost
from kvmops.fleet.reading import HostReading
from kvmops.guests import macs
from kvmops.guests.spec import guest_spec
from kvmops.guests.xml import read_domain, render_domain_xml
from kvmops.images import nocloud
from kvmops.images import tweaks as tw
from kvmops.procedures import guest_create as gc
from kvmops.procedures.base import PreconditionFailed
from kvmops.procedures.fleet_macs import fleet_macs, read_fleet_macs
from kvmops.runbook.checks import check_against_site, check_values
from kvmops.runbook.params import Param
from tests.unit.test_guest_create import image, req
from tests.unit.test_guest_simlvm import SimLvm
from tests.unit.test_guest_testbed import Bed, bed

__all__ = ["bed", "image"]  # fixtures from other modules

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"
TWO = {"vlans": "2368,223", "address": "10.5.68.237", "addresses": "223=132.230.223.200"}


def test_any_nic_takes_an_address_the_first_gets_the_route_and_dns(bed: Bed, image: str) -> None:
    r = req(bed, image, **TWO)
    first, second = r.addresses
    assert (first.nic, first.with_prefix, first.default_route, [str(d) for d in first.dns]) == \
        (0, "10.5.68.237/24", True, ["132.230.200.200"])
    assert (second.nic, second.with_prefix, second.default_route, second.dns) == (1, "132.230.223.200/24", False, ())
    assert r.address == first


def test_gateway_vlan_moves_the_route_and_dns(bed: Bed, image: str) -> None:
    r = req(bed, image, **TWO, gateway_vlan=223)
    assert [(a.network.vlan, a.default_route, bool(a.dns)) for a in r.addresses] == [(2368, False, False),
                                                                                       (223, True, True)]
    only_second = req(bed, image, vlans="2368,223", addresses="223=132.230.223.200")
    (a,) = only_second.addresses
    # the first NIC has no static address: its DHCP gives the route; the static one gets none, but DNS
    assert (a.nic, a.default_route, bool(a.dns)) == (1, False, True)


def test_macs_are_chosen_shown_and_defined(bed: Bed, image: str) -> None:
    host = bed.host(runner=SimLvm())
    r = req(bed, image, **TWO)
    facts = read_facts(host, gc.wanted(bed.site, r))
    chosen = gc.macs_of(facts, r)
    assert chosen == macs.choose(bed.site.name, "web2", 2, facts.macs_taken()) == gc.macs_of(facts, r)
    lines = gc.check(facts, r)
    assert f"NIC 1: VLAN 2368, bridge virbr1.2368, MAC {chosen[0]} (10.5.68.0/24): 10.5.68.237/24 on VLAN 2368, " \
           "default route via 10.5.68.254, DNS 132.230.200.200" in lines
    assert f"NIC 2: VLAN 223, bridge virbr1.223, MAC {chosen[1]} (132.230.223.0/24): 132.230.223.200/24 on VLAN 223, " \
           "no default route" in lines
    notes = [ln for ln in lines if ln.startswith("NOTE: ")]
    assert any(f"before the guest's first boot, add a reservation for 10.5.68.237 (guest web2) with MAC {chosen[0]}"
               in n for n in notes), notes
    assert any(f"132.230.223.200 (guest web2) with MAC {chosen[1]} on virbr1.223" in n for n in notes), notes
    assert not any("configures only eth0" in ln for ln in lines)
    proc = gc.procedure(facts, r)
    define = next(p for p in proc.preview if p.title.startswith("define guest"))
    xml = next(s.call.xml for s in define.steps if s.call is not None and s.call.verb == "define")
    assert read_domain(xml).macs == chosen
    start = next(p for p in proc.preview if p.title.startswith("start guest"))  # the seed's retirement follows
    assert any(n.startswith("before this start: VLAN 2368") and chosen[0] in n for n in start.notes)


def test_the_macs_avoid_every_mac_of_the_host(bed: Bed, image: str) -> None:
    host = bed.host(runner=SimLvm())
    r = req(bed, image, **TWO)
    preferred = macs.derived(bed.site.name, "web2", 0)
    other = guest_spec(bed.site, "ext2", vlans=(2368,), disk_path="/var/tmp/ext2.raw", macs=(preferred,))
    host.virt.define(render_domain_xml(bed.site, other), "ext2")
    facts = read_facts(host, gc.wanted(bed.site, r))
    chosen = gc.macs_of(facts, r)
    assert chosen[0] == macs.derived(bed.site.name, "web2", 0, attempt=1) and preferred not in chosen
    # the fleet's guests count too, when known
    far = gc.with_fleet(r, frozenset({chosen[1]}))
    assert gc.macs_of(facts, far)[1] == macs.derived(bed.site.name, "web2", 1, attempt=1)


def test_the_seed_matches_each_nic_by_its_mac(bed: Bed, image: str) -> None:
    chosen = ("52:54:00:12:34:01", "52:54:00:12:34:02")
    seed = gc.seed(req(bed, image, **TWO), chosen)
    net = yaml.safe_load(seed.files()["network-config"])
    assert net == {"version": 2, "ethernets": {
        "nic1": {"match": {"macaddress": chosen[0]}, "addresses": ["10.5.68.237/24"],
                 "routes": [{"to": "0.0.0.0/0", "via": "10.5.68.254"}],
                 "nameservers": {"addresses": ["132.230.200.200"]}},
        "nic2": {"match": {"macaddress": chosen[1]}, "addresses": ["132.230.223.200/24"]}}}


def test_the_tweaks_find_each_nics_profile_by_its_mac(bed: Bed, image: str) -> None:
    chosen = ("52:54:00:12:34:01", "52:54:00:12:34:02")
    (static,) = [t for t in gc.tweaks(req(bed, image, setup="tweaks", **TWO), chosen) if isinstance(t, tw.StaticIp)]
    assert [(n.settings.mac, n.settings.address, n.settings.gateway, n.settings.dns) for n in static.nics] == [
        (chosen[0], "10.5.68.237/24", "10.5.68.254", ("132.230.200.200",)),
        (chosen[1], "132.230.223.200/24", None, ())]
    assert all(f"mac-address={m.upper()}" in n.keyfile for n, m in zip(static.nics, chosen, strict=True))


def test_a_whole_run_defines_the_macs_the_seed_names(bed: Bed, image: str) -> None:
    sim = SimLvm()
    host = bed.host(runner=sim)
    r = req(bed, image, **TWO, root_keys="", console_seconds=0)  # the test driver has no console to wait on
    facts = read_facts(host, gc.wanted(bed.site, r))
    chosen = gc.macs_of(facts, r)
    Executor(host, lambda _l: None).run_procedure(gc.procedure(facts, r), confirmed(""))
    assert read_domain(host.virt.inactive_xml("web2")).macs == chosen
    _vol, files = nocloud.read_iso(Path(nocloud.seed_path(bed.site, "web2")).read_bytes())
    entries = yaml.safe_load(files["network-config"])["ethernets"]
    assert [e["match"]["macaddress"] for e in entries.values()] == list(chosen)
    now = read_facts(host, gc.verify_wanted(bed.site, r))
    verdict = gc.verify(now, r)
    assert verdict.ok and f"ok: with the MACs {', '.join(chosen)}" in verdict.render()
    assert gc.macs_of(now, r) == chosen  # its own MACs do not count against it: a re-run plans the same


def test_a_fleet_host_that_does_not_answer_refuses(bed: Bed) -> None:
    here = FleetHost("testhost", bed.site, "site.toml")
    facts = read_facts(bed.host(runner=SimLvm()))
    other_site = dataclasses.replace(bed.site, name="kvm2")
    there = FleetHost("kvm2", other_site, "inv")
    ok = fleet_macs([HostReading(here, facts, "", 0.1), HostReading(there, facts, "", 0.1)], bed.site)
    assert ok == facts.macs_taken() and ok  # the other host's guests; this host's own are in its facts
    with pytest.raises(PreconditionFailed, match="kvm2 \\(timed out\\) did not answer"):
        fleet_macs([HostReading(there, None, "timed out", 60.0)], bed.site)
    assert read_fleet_macs(" , ", bed.site) == frozenset()  # no fleet given: nothing read, nothing to avoid


@pytest.mark.parametrize(("values", "message"), [
    ({"addresses": "223=132.230.223.9,"}, None),
    ({"addresses": "2368=10.5.68.9,223=132.230.223.900"}, "parameter addresses: '132.230.223.900' is not an IPv4"),
    ({"addresses": "x=1.2.3.4"}, "parameter addresses: pairs: VLAN id 'x' is not a number"),
    ({"gateway_vlan": 4095}, "parameter gateway_vlan: VLAN (0: the first) 4095 is outside 0-4094"),
])
def test_the_runbook_checks_the_new_parameters_before_the_kernel_starts(values: dict[str, object],
                                                                       message: str | None) -> None:
    declared = (Param("addresses", "", str), Param("gateway_vlan", 0, int))
    full = {"addresses": "", "gateway_vlan": 0, **values}
    if message is None:
        check_values(declared, full)  # type: ignore[arg-type]
        return
    with pytest.raises(InvalidInput, match=message.replace("(", "\\(").replace(")", "\\)")):
        check_values(declared, full)  # type: ignore[arg-type]


@pytest.mark.parametrize(("values", "message"), [
    ({"address": "10.5.68.9", "addresses": "223=10.5.68.7"}, "parameter addresses: 10.5.68.7 is not in VLAN 223"),
    ({"address": "132.230.223.9"}, "parameter address: 132.230.223.9 is not in VLAN 2368"),
    ({"address": "10.5.68.9", "gateway_vlan": 223}, "parameter gateway_vlan: VLAN 223 has no static address"),
])
def test_the_site_checks_name_the_parameter(bed: Bed, values: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_against_site({"guest": "web2", "vlans": "2368,223", **values}, bed.site)  # type: ignore[arg-type]
