"""Static guest addresses (guide 3.3.3): validation, the guest-side forms, the registry."""

from __future__ import annotations

import configparser
import dataclasses
import shlex
from pathlib import Path

import pytest

from kvmops.errors import ConfigError, InvalidInput, NotFound
from kvmops.executor import Executor
from kvmops.hostfacts import FactsIncomplete
from kvmops.images import tweaks as tw
from kvmops.net import address, registry
from kvmops.procedures import net_address
from kvmops.site import DHCP_NO, DHCP_UNKNOWN, DHCP_YES, Site, load_site
from tests.support.facts import host_facts
from tests.unit.test_guest_testbed import Bed, bed, facts, lvm_state

__all__ = ["bed"]

FIXTURES = Path(__file__).parent.parent / "fixtures" / "net"
GUIDE_CMD = ("nmcli con modify eth0 connection.interface-name eth0 ipv4.method manual ipv4.addresses "
             "10.5.68.237/24 ipv4.gateway 10.5.68.254 ipv4.dns 132.230.200.200 ipv4.may-fail no")


@pytest.fixture
def site() -> Site:
    return load_site()


@pytest.fixture
def guide(site: Site) -> address.StaticAddress:
    return address.static_address(site, "test1", 2368, "10.5.68.237")


def test_the_guides_example(guide: address.StaticAddress) -> None:
    assert " ".join(address.nmcli_modify_argv(guide)) == GUIDE_CMD
    assert str(guide.gateway) == "10.5.68.254" and guide.with_prefix == "10.5.68.237/24"


def _ini(text: str) -> dict[str, dict[str, str]]:
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(text)
    return {s: dict(cp[s]) for s in cp.sections()}


def test_keyfile_matches_what_networkmanager_writes_for_the_guides_command(
        guide: address.StaticAddress) -> None:
    """The fixture is the keyfile NM 1.42 wrote after the guide's ``nmcli con modify``."""
    want = _ini((FIXTURES / "nm-written-eth0.nmconnection").read_text())
    got = _ini(address.nm_keyfile(guide))
    assert got["connection"].pop("uuid") == address.profile_uuid(guide)
    want["connection"].pop("uuid")
    assert got == want


def test_profile_uuid_is_stable_per_guest(site: Site, guide: address.StaticAddress) -> None:
    again = address.static_address(site, "test1", 2368, "10.5.68.238")
    other = address.static_address(site, "test2", 2368, "10.5.68.238")
    assert address.profile_uuid(again) == address.profile_uuid(guide) != address.profile_uuid(other)


def test_ifcfg_has_the_same_settings(site: Site) -> None:
    a = address.static_address(site, "test1", 2368, "10.5.68.237/24", dns=["132.230.200.200", "10.5.68.1"])
    lines = address.ifcfg(a).splitlines()
    for want in ("DEVICE=eth0", "BOOTPROTO=none", "ONBOOT=yes", "IPADDR=10.5.68.237", "PREFIX=24",
                 "GATEWAY=10.5.68.254", "DNS1=132.230.200.200", "DNS2=10.5.68.1",
                 "IPV4_FAILURE_FATAL=yes"):
        assert want in lines
    assert "ipv4.dns 132.230.200.200,10.5.68.1" in " ".join(address.nmcli_modify_argv(a))
    assert "dns=132.230.200.200;10.5.68.1;" in address.nm_keyfile(a)
    assert a.keyfile_path == "/etc/NetworkManager/system-connections/eth0.nmconnection"
    assert a.ifcfg_path == "/etc/sysconfig/network-scripts/ifcfg-eth0"


def with_dhcp(site: Site, vlan: int, dhcp: str) -> Site:
    nets = tuple(dataclasses.replace(n, dhcp=dhcp) if n.vlan == vlan else n for n in site.networks)
    return dataclasses.replace(site, networks=nets)


@pytest.mark.parametrize(("dhcp", "says"), [
    (DHCP_YES, "VLAN 223 has an active DHCP service"),
    (DHCP_UNKNOWN, "VLAN 223 may have a DHCP service (the site file does not say"),
])
def test_the_reservation_reminder_unless_the_site_says_no_dhcp(site: Site, dhcp: str, says: str) -> None:
    site = with_dhcp(site, 223, dhcp)
    a = address.static_address(site, "web1", 223, "132.230.223.10")
    reminder = address.dhcp_reminder(site, a.network, address=a.address, guest=a.guest)
    assert reminder is not None and reminder.startswith(says)
    assert "reservation for 132.230.223.10 (guest web1)" in reminder and "virbr1.223" in reminder
    assert f"NOTE: {reminder}" in address.summary(a)
    by_vlan = address.dhcp_reminder(site, 223)  # guest-create's call: the site and the VLAN
    assert by_vlan is not None and by_vlan.startswith(says) and "the static address" in by_vlan


def test_no_reminder_where_the_site_says_no_dhcp(site: Site) -> None:
    site = with_dhcp(site, 2368, DHCP_NO)
    a = address.static_address(site, "test1", 2368, "10.5.68.237")
    assert address.dhcp_reminder(site, 2368) is None and address.dhcp_reminder(site, a.network) is None
    assert "NOTE" not in address.summary(a)


def test_the_guides_networks_all_remind(site: Site) -> None:
    """The guide does not say which networks have DHCP: every one of them reminds."""
    assert all(n.dhcp == DHCP_UNKNOWN for n in site.networks)
    assert all(address.dhcp_reminder(site, n.vlan) for n in site.networks)
    with pytest.raises(NotFound, match="VLAN 99 is not a network"):
        address.dhcp_reminder(site, 99)


@pytest.mark.parametrize(("ip", "match"), [
    ("10.5.67.20", r"not in VLAN 2368's network 10.5.68.0/24: it belongs to VLAN 2367"),
    ("192.168.1.5", r"not in VLAN 2368's network 10.5.68.0/24$"),
    ("10.5.68.0", "network address"),
    ("10.5.68.255", "broadcast address"),
    ("10.5.68.254", "default router"),
    ("10.5.68.300", "not an IPv4 address"),
    ("10.5.68.37/23", "has prefix /23 but VLAN 2368 is 10.5.68.0/24"),
    ("10.5.68.37/x", "not an address/prefix"),
    ("10.5.68.37/33", "not an address/prefix"),
    ("", "not an IPv4 address"),
])
def test_bad_addresses(site: Site, ip: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        address.static_address(site, "test1", 2368, ip)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"vlan": 5000}, InvalidInput, "outside 1-4094"),
    ({"vlan": 99}, NotFound, "VLAN 99 is not a network"),
    ({"dns": ["132.230.200"]}, InvalidInput, "DNS server '132.230.200' is not an IPv4 address"),
    ({"dns": []}, InvalidInput, "no DNS server"),
    ({"guest": "../x"}, InvalidInput, "guest name"),
    ({"device": "eth0/1"}, InvalidInput, "interface name"),
])
def test_bad_other_input(site: Site, kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    args: dict[str, object] = {"guest": "test1", "vlan": 2368, "ip": "10.5.68.237", **kwargs}
    with pytest.raises(error, match=match):
        address.static_address(site, **args)  # type: ignore[arg-type]


def test_address_taken_by_another_guest(site: Site) -> None:
    known = {"db1": "10.5.68.237/24", "web1": ("10.5.67.5", "10.5.68.40")}
    with pytest.raises(InvalidInput, match="10.5.68.237 is taken by guest 'db1'"):
        address.static_address(site, "test1", 2368, "10.5.68.237", known=known)
    with pytest.raises(InvalidInput, match="taken by guest 'web1'"):
        address.static_address(site, "test1", 2368, "10.5.68.40", known=known)
    same = address.static_address(site, "db1", 2368, "10.5.68.237", known=known)
    assert same.guest == "db1"  # a guest keeps its own address


def test_registry_round_trip_and_conflicts(site: Site, guide: address.StaticAddress) -> None:
    reg = registry.Registry("/root/kvm/addresses.toml").with_address(guide)
    other = address.static_address(site, "web1", 2367, "10.5.67.5")
    reg = reg.with_address(other)
    text = reg.render()
    back = registry.parse_registry(text, reg.path)
    assert back == reg
    assert back.known() == {"web1": ("10.5.67.5",), "test1": ("10.5.68.237",)}
    with pytest.raises(InvalidInput, match="taken by guest 'test1'"):
        address.static_address(site, "db1", 2368, "10.5.68.237", known=back.known())
    moved = back.with_address(address.static_address(site, "test1", 2368, "10.5.68.50"))
    assert moved.known()["test1"] == ("10.5.68.50",)
    assert back.without("test1").known() == {"web1": ("10.5.67.5",)}


@pytest.mark.parametrize(("text", "match"), [
    ("[[address]]\nguest = 'a'\nvlan = 1\n", "needs exactly guest, vlan and ip"),
    ("[[address]]\nguest = 'a'\nvlan = '1'\nip = '10.0.0.1'\n", "vlan a number"),
    ("[[address]]\nguest = 'a'\nvlan = 1\nip = '10.0.0.300'\n", r"address\[0\]"),
    ("[[address]]\nguest = 'a'\nvlan = 1\nip = '10.0.0.1'\n[[address]]\nguest = 'b'\nvlan = 1\nip = '10.0.0.1'\n",
     "recorded for both a and b"),
    ("[hosts]\n", "unknown key"),
    ("address = [", "not valid TOML"),
])
def test_broken_registry_names_the_file(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=f"/r.toml: .*{match}"):
        registry.parse_registry(text, "/r.toml")


def test_record_plan_writes_atomically_and_is_idempotent(guide: address.StaticAddress) -> None:
    reg = registry.Registry("/root/kvm/addresses.toml")
    plan = registry.record(reg, guide)
    write, rename = (s.cmd for s in plan.steps)
    assert write is not None and rename is not None
    assert write.argv == ("install", "-D", "-m", "0644", "/dev/stdin", "/root/kvm/addresses.toml.tmp")
    assert write.stdin == reg.with_address(guide).render()
    assert rename.argv == ("mv", "-f", "-T", "--", "/root/kvm/addresses.toml.tmp", "/root/kvm/addresses.toml")
    assert registry.record(reg.with_address(guide), guide).empty
    assert registry.release(reg, "test1").empty


def test_a_missing_registry_is_an_empty_one_and_plans_come_from_facts(site: Site) -> None:
    """Plan mode for any address and VLAN: the registry is a file fact; missing = empty."""
    path = registry.registry_path(site)
    empty = host_facts(lvm_state(), files={path: None})
    for vlan, ip in ((2368, "10.5.68.237"), (2367, "10.5.67.199"), (68, "132.230.68.3"), (223, "132.230.223.77")):
        a = net_address.check(empty, "vmtest1", vlan, ip)
        plan = net_address.record(empty, a)
        write, _rename = (s.cmd for s in plan.steps)
        assert write is not None and f'ip = "{ip}"' in (write.stdin or "")
        assert net_address.reminder(empty, a) is not None  # the guide's networks: DHCP unknown
    assert net_address.release(empty, "vmtest1").empty
    with pytest.raises(FactsIncomplete, match="addresses.toml was not read"):
        net_address.check(host_facts(lvm_state()), "vmtest1", 2368, "10.5.68.237")


def test_addresses_are_checked_against_the_registry_fact(site: Site) -> None:
    path = registry.registry_path(site)
    text = registry.Registry(path).with_address(address.static_address(site, "db1", 2368, "10.5.68.9")).render()
    held = host_facts(lvm_state(), files={path: text})
    with pytest.raises(InvalidInput, match="10.5.68.9 is taken by guest 'db1'"):
        net_address.check(held, "web1", 2368, "10.5.68.9")
    a = address.static_address(site, "web1", 2368, "10.5.68.9")  # validated without the registry
    with pytest.raises(InvalidInput, match="taken by guest 'db1'"):
        net_address.record(held, a)  # the plan asks the facts again


def test_registry_through_a_real_runner(bed: Bed) -> None:
    host = bed.host()
    wanted = net_address.wanted(host.site)
    first = facts(host, wanted)
    assert registry.registry_of(first).entries == ()
    a = net_address.check(first, "test1", 2368, "10.5.68.237")
    Executor(host, lambda _: None).execute(net_address.record(first, a))
    now = facts(host, wanted)
    assert registry.registry_of(now).known() == {"test1": ("10.5.68.237",)}
    assert net_address.verify_recorded(now, a).ok
    assert not (bed.xml_dir / "addresses.toml.tmp").exists()
    Executor(host, lambda _: None).execute(net_address.release(now, "test1"))
    assert net_address.verify_released(facts(host, wanted), "test1").ok
    assert not net_address.verify_recorded(facts(host, wanted), a).ok


# -- every NIC, bound by MAC (issue 24) ------------------------------------------------------------


def test_a_nic_known_by_its_mac_is_bound_by_it(site: Site) -> None:
    a = address.static_address(site, "test1", 2368, "10.5.68.237", mac="52:54:00:AB:CD:EF")
    argv = " ".join(address.nmcli_modify_argv(a))
    assert "connection.interface-name '' ethernet.mac-address 52:54:00:ab:cd:ef" in shlex.join(
        address.nmcli_modify_argv(a)) and "interface-name eth0" not in argv
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(address.nm_keyfile(a))
    assert cp["ethernet"]["mac-address"] == "52:54:00:AB:CD:EF" and "interface-name" not in cp["connection"]
    lines = address.ifcfg(a).splitlines()
    assert "HWADDR=52:54:00:ab:cd:ef" in lines and not any(ln.startswith("DEVICE=") for ln in lines)
    note = address.summary(a)
    assert "before the guest's first boot, add a reservation for 10.5.68.237 (guest test1) with MAC " \
           "52:54:00:ab:cd:ef on virbr1.2368" in note


def test_a_nic_without_the_default_route_or_dns(site: Site) -> None:
    a = dataclasses.replace(address.static_address(site, "test1", 223, "132.230.223.200"), default_route=False,
                            dns=())
    argv = address.nmcli_modify_argv(a)
    assert "ipv4.gateway" not in argv and "ipv4.dns" not in argv and argv[-4:-2] == ("ipv4.never-default", "yes")
    text = address.nm_keyfile(a)
    assert "address1=132.230.223.200/24\n" in text and "never-default=true" in text and "dns=" not in text
    lines = address.ifcfg(a).splitlines()
    assert "DEFROUTE=no" in lines and not any(ln.startswith(("GATEWAY", "DNS")) for ln in lines)


def test_the_list_of_a_defined_guest_follows_its_nics_and_macs(bed: Bed) -> None:
    host = bed.host()
    f = facts(host, net_address.wanted(bed.site))
    (mac,) = f.macs_by_guest["web1"]
    (a,) = net_address.check_all(f, "web1", {2368: "10.5.68.50"})
    assert (a.nic, a.mac, a.default_route) == (0, mac, True)
    with pytest.raises(InvalidInput, match="guest web1 has no NIC on VLAN 223"):
        net_address.check_all(f, "web1", {223: "132.230.223.50"})
    two = net_address.check_all(f, "new1", {223: "132.230.223.50", 2368: "10.5.68.50"}, gateway_vlan=2368)
    assert [(x.nic, x.network.vlan, x.default_route, bool(x.dns), x.mac) for x in two] == [
        (0, 223, False, False, None), (1, 2368, True, True, None)]
    plan = net_address.record_all(f, two)
    assert "record 132.230.223.50 (VLAN 223), 10.5.68.50 (VLAN 2368) for guest new1" in plan.title


def test_image_tweak_binds_the_address_to_the_defined_guests_nic(bed: Bed, site: Site) -> None:
    from kvmops.procedures import image_tweak
    from kvmops.procedures.base import PreconditionFailed

    f = facts(bed.host(), net_address.wanted(bed.site))
    (mac,) = f.macs_by_guest["db1"]
    a = image_tweak.on_nic(f, address.static_address(bed.site, "db1", 2368, "10.5.68.70"))
    assert (a.nic, a.mac) == (0, mac)
    with pytest.raises(PreconditionFailed, match="guest db1 has no NIC on VLAN 223"):
        image_tweak.on_nic(f, address.static_address(bed.site, "db1", 223, "132.230.223.70"))
    fresh = address.static_address(bed.site, "new1", 223, "132.230.223.70")
    assert image_tweak.on_nic(f, fresh) == fresh  # not defined: found by name, as before
    req = image_tweak.request(bed.site, "db1", sudo=True, vlan=2368, address="10.5.68.70")
    placed = image_tweak.on_its_nic(f, req)  # the runbook's request: address and network tweak on db1's NIC
    assert placed.address is not None and (placed.address.nic, placed.address.mac) == (0, mac)
    nets = [t for t in placed.tweaks if isinstance(t, tw.StaticIp)]
    assert nets == [tw.StaticIp.from_address(placed.address)] and len(placed.tweaks) == len(req.tweaks)
    bare = image_tweak.request(bed.site, "db1", sudo=True)
    assert image_tweak.on_its_nic(f, bare) == bare  # no address: nothing to place
