"""Properties of the network builders: for random VLANs, uplinks, bridge names and addresses,
bad input is a kvmops error before any command exists; the plans and the guest-side command
hold only validated names (at most 15 characters), the VLAN's own bridge and an address that
is a host address of the VLAN's network (never its network, broadcast or .254 router)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from kvmops import names
from kvmops.errors import KvmopsError
from kvmops.net import validate
from kvmops.net.address import nmcli_modify_argv, static_address
from kvmops.net.facts import NetFacts
from kvmops.net.nmcli import Profile
from kvmops.net.ops import ensure_network, remove_bridge
from kvmops.plan import Plan
from kvmops.site import load_site

SITE = load_site()
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
SEEN: dict[str, int] = {"network": 0, "remove": 0, "address": 0}
SAME_NET = st.sampled_from(SITE.networks).flatmap(
    lambda n: st.tuples(st.just(n.vlan), st.integers(0, 300).map(lambda h: str(n.cidr.network_address + h))))
EMPTY = NetFacts()  # NetworkManager running, no bridge profiles yet: every network is planned from scratch


def commands(plan: Plan) -> list[tuple[str, ...]]:
    return [s.cmd.argv for s in plan.steps if s.cmd is not None]


@settings(max_examples=150, deadline=None)
@given(vlan=vlans, uplink=uplinks)
def test_network_plans_hold_only_validated_names(vlan: object, uplink: str) -> None:
    site = replace(SITE, uplink=uplink)
    try:
        plan = ensure_network(site, EMPTY, vlan)  # type: ignore[arg-type]
    except KvmopsError:
        return
    SEEN["network"] += 1
    vid = validate.vlan_id(vlan)  # type: ignore[arg-type]
    bridge = site.network(vid).bridge
    port = f"{uplink}.{vid}"
    assert len(port) <= names.MAX_IFNAME and names.ifname(port) == port
    argvs = commands(plan)
    assert argvs and all(a[0] == "nmcli" for a in argvs)
    for a in argvs:
        for flag in ("ifname", "con-name", "master"):
            if flag in a:
                assert a[a.index(flag) + 1] in (bridge, port)
        if "id" in a and "vlan" in a:
            assert a[a.index("id") + 1] == str(vid) and a[a.index("dev") + 1] == uplink


HOST_BRIDGES = ("br0", "virbr0", "virbr1")
ALL_BRIDGES = (*sorted(BRIDGES), "virbr1.99", *HOST_BRIDGES)
PROFILES = NetFacts(profiles=tuple(
    p for i, b in enumerate(ALL_BRIDGES) for p in (
        Profile(f"{b}", f"uuid-b{i}", "bridge", b),
        Profile(f"port-{i}", f"uuid-p{i}", "vlan", f"ens802f1.{i}", master=b, slave_type="bridge"))))


@settings(max_examples=100, deadline=None)
@given(bridge=st.one_of(st.sampled_from(ALL_BRIDGES), st.text(max_size=20)),
       attached=st.sets(st.sampled_from(ALL_BRIDGES), max_size=3))
def test_only_a_guest_bridge_without_guests_is_ever_removed(bridge: str, attached: set[str]) -> None:
    try:
        plan = remove_bridge(SITE, PROFILES, bridge, attached)
    except KvmopsError:
        return
    SEEN["remove"] += 1
    assert bridge not in HOST_BRIDGES and bridge not in attached
    i = ALL_BRIDGES.index(bridge)
    assert commands(plan) == [("nmcli", "connection", "delete", "uuid", f"uuid-p{i}"),
                              ("nmcli", "connection", "delete", "uuid", f"uuid-b{i}")]
    assert set(plan.targets) == {bridge}  # destructive: needs confirm equal to this bridge


@settings(max_examples=200, deadline=None)
@given(guest=st.one_of(st.sampled_from(["web1", "test2"]), st.sampled_from(["web1"]), st.text(max_size=10)),
       case=st.one_of(SAME_NET, SAME_NET, st.tuples(vlans, addresses)))
def test_a_static_address_is_a_host_address_of_the_vlan_or_refused(guest: str, case: tuple[object, str]) -> None:
    vlan, ip = case
    try:
        a = static_address(SITE, guest, vlan, ip, known={"other": "10.5.68.10"})  # type: ignore[arg-type]
    except KvmopsError:
        return
    SEEN["address"] += 1
    net = SITE.network(validate.vlan_id(vlan))  # type: ignore[arg-type]
    assert a.address in net.cidr and a.interface.network == net.cidr
    assert a.address not in (net.cidr.network_address, net.cidr.broadcast_address, net.gateway)
    assert a.address != ipaddress.IPv4Address("10.5.68.10")  # another guest's
    argv = nmcli_modify_argv(a)
    assert argv[argv.index("ipv4.addresses") + 1] == f"{a.address}/{net.cidr.prefixlen}"
    assert argv[argv.index("ipv4.gateway") + 1] == str(net.gateway)
    assert names.guest_name(a.guest) == guest


@settings(max_examples=200, deadline=None)
@given(vlan=vlans)
def test_vlan_ids_are_1_to_4094_or_refused(vlan: object) -> None:
    try:
        vid = validate.vlan_id(vlan)  # type: ignore[arg-type]
    except KvmopsError:
        return
    assert isinstance(vid, int) and 1 <= vid <= 4094 and not isinstance(vlan, bool)


def test_the_properties_saw_accepted_input() -> None:
    """Each property above met input that was accepted, not only refusals (runs after them)."""
    assert min(SEEN.values()) >= 5, SEEN
