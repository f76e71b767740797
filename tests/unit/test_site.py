"""Site configuration: the shipped default and every kind of bad file."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from kvmops.errors import ConfigError, InvalidInput, NotFound
from kvmops.site import DHCP_NO, DHCP_UNKNOWN, DHCP_YES, default_gateway, gateway_for, load_site
from tests.support.facts import empty_facts

BASE = """
[host]
name = "h"
[storage]
vg = "rl_build"
lv_prefix = "vm"
[network]
uplink = "ens802f1"
dns = ["132.230.200.200"]
"""


def write(tmp_path: Path, extra: str, base: str = BASE) -> Path:
    p = tmp_path / "site.toml"
    p.write_text(base + extra)
    return p


def test_guide_site_is_the_default() -> None:
    site = load_site()
    assert (site.vg, site.lv_prefix, site.uplink, site.xml_dir) == ("rl_build", "vm", "ens802f1", "/root/kvm")
    assert [n.vlan for n in site.networks] == [223, 2367, 2368, 68]
    net = site.network(2368)
    assert net.bridge == "virbr1.2368" and str(net.gateway) == "10.5.68.254"
    assert site.guest_lv("test1") == "vmtest1"
    assert site.snapshot_size == 5 * 1024**3
    assert site.dns == (ipaddress.IPv4Address("132.230.200.200"),)


def test_unknown_vlan_names_the_known_ones() -> None:
    with pytest.raises(NotFound, match="known: 223, 2367, 2368, 68"):
        load_site().network(999)


def test_host_lvs_are_not_guest_lvs() -> None:
    site = load_site()
    assert site.is_guest_lv("vmtest1")
    assert not any(site.is_guest_lv(n) for n in ("root", "home", "opt", "vm"))


@pytest.mark.parametrize(
    ("extra", "key", "why"),
    [
        ("[bogus]\n", "bogus", "unknown section"),
        ("[libvirt]\nuri = 'qemu:///system'\ncolour = 1\n", "libvirt", "unknown key"),
        ("[[network.vlan]]\nid = 5\ncidr = '10.0.0.0/33'\n", "network.vlan[0].cidr", "not a network"),
        ("[[network.vlan]]\nid = 5\ncidr = '10.0.0.1/24'\n", "network.vlan[0].cidr", "host bits"),
        ("[[network.vlan]]\nid = 5000\ncidr = '10.0.0.0/24'\n", "network.vlan[0].id", "outside 1-4094"),
        ("[[network.vlan]]\nid = 5\ncidr = '10.0.0.0/24'\n[[network.vlan]]\nid = 5\ncidr = '10.0.1.0/24'\n",
         "network.vlan[1].id", "listed twice"),
        ("[[network.vlan]]\nid = 5\ncidr = '10.0.0.0/24'\ngateway = '10.9.9.254'\n",
         "network.vlan[0].gateway", "not a host address inside"),
        ("[[network.vlan]]\nid = 5\ncidr = '10.0.0.0/24'\n[[network.vlan]]\nid = 6\ncidr = '10.0.0.0/23'\n",
         "network.vlan[1].cidr", "overlaps"),
        ("[[network.vlan]]\nid = 5\ncidr = '10.0.0.0/24'\nbridge = 'virbr1.toolongname'\n",
         "network.vlan[0].bridge", "at most 15"),
        ("[[network.vlan]]\nid = '5'\ncidr = '10.0.0.0/24'\n", "network.vlan[0].id", "must be int"),
        ("[[network.vlan]]\nid = 5\ncidr = '203.0.113.0/25'\n", "network.vlan[0].gateway",
         '203.0.113.0/25 has no .254 host address, so the rule "the default router is always on .254" gives '
         'none: name the router (gateway = "...")'),
        ("[[network.vlan]]\nid = 5\ncidr = '10.0.0.0/24'\ndhcp = true\n", "network.vlan[0].dhcp",
         'must be "yes" or "no" (leave it out when unknown), got True'),
        ("[[network.vlan]]\nid = 5\ncidr = '10.0.0.0/24'\ndhcp = 'unknown'\n", "network.vlan[0].dhcp",
         'must be "yes" or "no"'),
    ],
)
def test_bad_site_files(tmp_path: Path, extra: str, key: str, why: str) -> None:
    path = write(tmp_path, extra)
    with pytest.raises(ConfigError) as err:
        load_site(path)
    assert str(path) in str(err.value) and key in str(err.value) and why in str(err.value)


@pytest.mark.parametrize(
    ("base", "key"),
    [
        (BASE.replace('dns = ["132.230.200.200"]', 'dns = ["132.230.200"]'), "network.dns[0]"),
        (BASE.replace('vg = "rl_build"', 'vg = "rl build"'), "storage.vg"),
        (BASE.replace('lv_prefix = "vm"', 'lv_prefix = ""'), "storage.lv_prefix"),
        (BASE.replace('lv_prefix = "vm"', 'lv_prefix = "vm"\nsnapshot_size = "5x"'), "storage.snapshot_size"),
        (BASE.replace('name = "h"', ""), "host.name"),
        (BASE + "[libvirt]\ndomain_type = 'xen'\n", "libvirt.domain_type"),
    ],
)
def test_bad_values(tmp_path: Path, base: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_site(write(tmp_path, "", base))


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_site(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_site(write(tmp_path, "[[[", ""))


@pytest.mark.parametrize(("cidr", "gateway"), [
    ("10.5.68.0/24", "10.5.68.254"),
    ("10.5.68.0/23", "10.5.69.254"),  # the .254 at the top, not 10.5.68.254
    ("10.5.0.0/16", "10.5.255.254"),
    ("203.0.113.128/25", "203.0.113.254"),
    ("198.51.100.192/26", "198.51.100.254"),
])
def test_gateway_is_the_dot_254_at_the_top(cidr: str, gateway: str) -> None:
    assert str(default_gateway(ipaddress.IPv4Network(cidr))) == gateway


@pytest.mark.parametrize("cidr", ["203.0.113.0/25", "198.51.100.128/26", "10.0.0.248/30", "10.0.0.254/32"])
def test_a_network_without_a_dot_254_host_has_no_gateway_by_the_rule(cidr: str) -> None:
    with pytest.raises(InvalidInput, match=rf"^{cidr} has no \.254 host address, so the rule .* gives none$"):
        default_gateway(ipaddress.IPv4Network(cidr))


def test_a_site_names_the_router_of_a_network_without_dot_254(tmp_path: Path) -> None:
    site = load_site(write(tmp_path, "[[network.vlan]]\nid = 12\ncidr = '203.0.113.0/25'\ngateway = '203.0.113.126'\n"))
    assert str(site.network(12).gateway) == "203.0.113.126"
    assert str(gateway_for(site, "203.0.113.5")) == "203.0.113.126"  # the site's router, not a .254


def test_gateway_for_an_address_comes_from_the_site_then_the_rule() -> None:
    site = load_site()
    assert str(gateway_for(site, "10.5.68.237")) == "10.5.68.254"
    assert str(gateway_for(site, "10.5.68.237/24")) == "10.5.68.254"
    assert str(gateway_for(site, "192.168.7.9/23")) == "192.168.7.254"  # no site network: the rule
    assert str(gateway_for(site, "172.16.0.9/16")) == "172.16.255.254"
    no_254 = r"203.0.113.5/25: 203.0.113.0/25 has no \.254 host address.*: give the router \(--gateway\)$"
    with pytest.raises(InvalidInput, match=no_254):
        gateway_for(site, "203.0.113.5/25")
    with pytest.raises(InvalidInput, match="in none of site .* networks: give it with its prefix"):
        gateway_for(site, "192.168.7.9")
    with pytest.raises(InvalidInput, match="in VLAN 2368's network 10.5.68.0/24, but its prefix says"):
        gateway_for(site, "10.5.68.237/16")
    with pytest.raises(InvalidInput, match="not an IPv4 address"):
        gateway_for(site, "10.5.68.300")


def test_dhcp_is_yes_no_or_unknown(tmp_path: Path) -> None:
    site = load_site(write(tmp_path, "[[network.vlan]]\nid = 1\ncidr = '10.0.1.0/24'\ndhcp = 'yes'\n"
                                     "[[network.vlan]]\nid = 2\ncidr = '10.0.2.0/24'\ndhcp = 'no'\n"
                                     "[[network.vlan]]\nid = 3\ncidr = '10.0.3.0/24'\n"))
    assert [n.dhcp for n in site.networks] == [DHCP_YES, DHCP_NO, DHCP_UNKNOWN]
    assert [n.dhcp_text for n in site.networks] == ["yes", "no", "unknown (the guide does not say)"]
    assert {n.dhcp for n in load_site().networks} == {DHCP_UNKNOWN}  # the guide does not say


def test_image_seed_takes_the_gateway_from_the_one_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``kvmops image seed --ip``: the site's router of a /25 (not a .254 outside it), or a clear refusal."""
    import kvmops.cli.image
    import kvmops.executor
    from kvmops.cli.main import main

    base = BASE + f"[libvirt]\nxml_dir = '{tmp_path}/kvm'\n"
    site = write(tmp_path, "[[network.vlan]]\nid = 12\ncidr = '203.0.113.0/25'\ngateway = '203.0.113.126'\n", base)
    # this machine has no VG of the site: the gate judges the seed's file against an empty host
    monkeypatch.setattr(kvmops.executor, "read_facts", lambda host, _w=None: empty_facts(host.site))
    monkeypatch.setattr(kvmops.cli.image, "facts_of", lambda host, _w=None: empty_facts(host.site))  # web1's MAC
    assert main(["image", "seed", "web1", "--ip", "203.0.113.5/25", "--site", str(site)]) == 0
    assert main(["image", "seed", "web1", "--ip", "198.51.100.5/25", "--site", str(site)]) == 2
    err = capsys.readouterr().err
    assert "198.51.100.5/25: 198.51.100.0/25 has no .254 host address" in err and "--gateway" in err
    assert not (tmp_path / "kvm").exists()  # plan only: nothing written
