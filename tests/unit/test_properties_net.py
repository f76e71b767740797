"""Properties of the network builders and operations over random facts: bad input is a kvmops
error before any command exists; plans hold only validated names (at most 15 characters) and
the VLAN's own bridge; a bridge is removed only when it is a guest bridge that no defined guest
(running or not) names and that has no guest NIC or other port; a static address is a host
address of the VLAN's network (never its network, broadcast or router address).

Each property counts, within its own test, how often its input was accepted and asserts a
minimum, so it passes alone and in any order and cannot pass on refusals only.
``KVMOPS_PROPERTY_PROFILE=ci`` runs 10,000 cases of the bridge removal, 2,000 of the others
(tests/support/properties.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from kvmops import names
from kvmops.errors import KvmopsError
from kvmops.guests.domain import DomainInfo
from kvmops.hostfacts import HostFacts
from kvmops.net import validate
from kvmops.net.address import nmcli_modify_argv, static_address
from kvmops.net.facts import NetFacts
from kvmops.net.iplink import Link
from kvmops.net.nmcli import Profile
from kvmops.net.ops import ensure_network, remove_bridge
from kvmops.plan import Plan
from kvmops.site import Site, load_site
from tests.support.facts import domain, host_facts
from tests.support.properties import cases, least
from tests.unit.test_guest_testbed import lvm_state

SITE = load_site()
LVM = lvm_state()
VLANS = sorted(n.vlan for n in SITE.networks)
BRIDGES = {n.bridge for n in SITE.networks}

vlans = st.one_of(st.sampled_from(VLANS), st.sampled_from(VLANS), st.integers(-3, 5000),
                  st.sampled_from(["2368", " 2368", "0x10", "", "x", True, "4095", "٣"]))
uplinks = st.one_of(st.sampled_from(["ens802f1", "eth0", "enp1s0f0np0", "e"]),
                    st.from_regex(r"[a-z][a-z0-9]{0,14}", fullmatch=True), st.text(max_size=16))
addresses = st.one_of(
    st.builds(lambda net, host: str(net.cidr.network_address + host),
              st.sampled_from(SITE.networks), st.integers(0, 300)),
    st.ip_addresses(v=4).map(str),
    st.sampled_from(["10.5.68.237/24", "10.5.68.237/16", "10.5.68.237/", "10.5.68.0", "10.5.68.255",
                     "10.5.68.254", "10.5.68.", "::1", "", "10.5.68.237 ", "010.5.68.1"]),
    st.text(max_size=18),
)
SAME_NET = st.sampled_from(SITE.networks).flatmap(
    lambda n: st.tuples(st.just(n.vlan), st.integers(0, 300).map(lambda h: str(n.cidr.network_address + h))))


def facts_of(net: NetFacts, domains: tuple[DomainInfo, ...] = (), site: Site = SITE) -> HostFacts:
    return host_facts(LVM, site=site, domains=domains, net=net)


EMPTY = NetFacts()  # NetworkManager running, no bridge profiles yet: every network is planned from scratch


def commands(plan: Plan) -> list[tuple[str, ...]]:
    return [s.cmd.argv for s in plan.steps if s.cmd is not None]


def test_network_plans_hold_only_validated_names() -> None:
    accepted = []
    n = cases(150, ci=2000)

    @settings(max_examples=n, deadline=None)
    @given(vlan=vlans, uplink=uplinks)
    def prop(vlan: object, uplink: str) -> None:
        site = replace(SITE, uplink=uplink)
        try:
            plan = ensure_network(facts_of(EMPTY, site=site), vlan)  # type: ignore[arg-type]
        except KvmopsError:
            return
        accepted.append(vlan)
        vid = validate.vlan_id(vlan)  # type: ignore[arg-type]
        bridge = site.network(vid).bridge
        port = f"{uplink}.{vid}"
        assert len(port) <= names.MAX_IFNAME and names.ifname(port) == port
        argvs = commands(plan)
        assert argvs and all(a[0] == "nmcli" for a in argvs)
        assert not any(a[1:3] == ("connection", "delete") for a in argvs)  # creating never removes anything
        for a in argvs:
            opts = dict(zip(a[3::2], a[4::2], strict=False))  # property/value pairs: an uplink may be named "id"
            for flag in ("ifname", "con-name", "master"):
                if flag in opts:
                    assert opts[flag] in (bridge, port)
            if opts.get("type") == "vlan":
                assert opts["id"] == str(vid) and opts["dev"] == uplink

    prop()
    assert len(accepted) >= least(25 / 150, n), len(accepted)


HOST_BRIDGES = ("br0", "virbr0", "virbr1")
ALL_BRIDGES = (*sorted(BRIDGES), "virbr1.99", *HOST_BRIDGES)
PROFILES = tuple(
    p for i, b in enumerate(ALL_BRIDGES) for p in (
        Profile(f"{b}", f"uuid-b{i}", "bridge", b),
        Profile(f"port-{i}", f"uuid-p{i}", "vlan", f"ens802f1.{i}", master=b, slave_type="bridge")))
LINKS = tuple(Link(b, 10 + i, kind="bridge", ageing_cs=0) for i, b in enumerate(ALL_BRIDGES))
guests = st.lists(st.tuples(st.sets(st.sampled_from(ALL_BRIDGES), max_size=2), st.booleans()), max_size=2)
# ports: (bridge, kind) with kind a guest tap (tun), a vnet named veth, another veth, or the VLAN port
ports = st.lists(st.tuples(st.sampled_from(ALL_BRIDGES), st.sampled_from(["tun", "vnet", "veth", "vlan"])),
                 max_size=3)


def port_links(chosen: list[tuple[str, str]]) -> tuple[Link, ...]:
    out = []
    for i, (bridge, kind) in enumerate(chosen):
        name = {"tun": f"tap{i}", "vnet": f"vnet{i}", "veth": f"veth{i}", "vlan": f"ens802f1.{i}"}[kind]
        out.append(Link(name, 100 + i, kind={"vnet": "veth"}.get(kind, kind), master=bridge))
    return tuple(out)


def test_only_a_bridge_no_guest_uses_is_ever_removed() -> None:
    accepted = []
    n = cases(150)

    @settings(max_examples=n, deadline=None)
    @given(bridge=st.one_of(st.sampled_from(ALL_BRIDGES), st.sampled_from(sorted(BRIDGES)), st.text(max_size=20)),
           defined=guests, plugged=ports)
    def prop(bridge: str, defined: list[tuple[set[str], bool]], plugged: list[tuple[str, str]]) -> None:
        doms = tuple(domain(f"g{i}", active=running, bridges=sorted(bs)) for i, (bs, running) in enumerate(defined))
        facts = facts_of(NetFacts(profiles=PROFILES, links=LINKS + port_links(plugged)), doms)
        try:
            plan = remove_bridge(facts, bridge)
        except KvmopsError:
            return
        accepted.append(bridge)
        assert bridge not in HOST_BRIDGES
        assert not any(bridge in bs for bs, _ in defined)  # no defined guest, running or not, names it
        assert all(b != bridge or kind == "vlan" for b, kind in plugged)  # no tap, no other port
        i = ALL_BRIDGES.index(bridge)
        assert commands(plan) == [("nmcli", "connection", "delete", "uuid", f"uuid-p{i}"),
                                  ("nmcli", "connection", "delete", "uuid", f"uuid-b{i}")]
        assert set(plan.targets) == {bridge}  # destructive: needs confirm equal to this bridge

    prop()
    assert len(accepted) >= least(20 / 150, n), len(accepted)


def test_a_static_address_is_a_host_address_of_the_vlan_or_refused() -> None:
    accepted = []
    n = cases(200, ci=2000)

    @settings(max_examples=n, deadline=None)
    @given(guest=st.one_of(st.sampled_from(["web1", "test2"]), st.sampled_from(["web1"]), st.text(max_size=10)),
           case=st.one_of(SAME_NET, SAME_NET, st.tuples(vlans, addresses)))
    def prop(guest: str, case: tuple[object, str]) -> None:
        vlan, ip = case
        try:
            a = static_address(SITE, guest, vlan, ip, known={"other": "10.5.68.10"})  # type: ignore[arg-type]
        except KvmopsError:
            return
        accepted.append(ip)
        net = SITE.network(validate.vlan_id(vlan))  # type: ignore[arg-type]
        assert a.address in net.cidr and a.interface.network == net.cidr
        assert a.address not in (net.cidr.network_address, net.cidr.broadcast_address, net.gateway)
        assert a.address != ipaddress.IPv4Address("10.5.68.10")  # another guest's
        argv = nmcli_modify_argv(a)
        assert argv[argv.index("ipv4.addresses") + 1] == f"{a.address}/{net.cidr.prefixlen}"
        assert argv[argv.index("ipv4.gateway") + 1] == str(net.gateway)
        assert names.guest_name(a.guest) == guest

    prop()
    assert len(accepted) >= least(35 / 200, n), len(accepted)


def test_vlan_ids_are_1_to_4094_or_refused() -> None:
    accepted = []
    n = cases(200, ci=2000)

    @settings(max_examples=n, deadline=None)
    @given(vlan=vlans)
    def prop(vlan: object) -> None:
        try:
            vid = validate.vlan_id(vlan)  # type: ignore[arg-type]
        except KvmopsError:
            return
        accepted.append(vid)
        assert isinstance(vid, int) and 1 <= vid <= 4094 and not isinstance(vlan, bool)

    prop()
    assert len(accepted) >= min(least(80 / 200, n), 2000), len(accepted)  # ~5,000 distinct inputs exist
