"""Site configuration: the shipped default and every kind of bad file."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from kvmops.errors import ConfigError, NotFound
from kvmops.site import default_gateway, load_site

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


def test_gateway_is_dot_254() -> None:
    assert str(default_gateway(ipaddress.IPv4Network("10.5.68.0/24"))) == "10.5.68.254"
    assert str(default_gateway(ipaddress.IPv4Network("10.5.0.0/16"))) == "10.5.255.254"
