"""The lab's view of a multihomed guest (kvmops_lab.nicview) on what the lab's booted guests
showed (tests/fixtures/images/nm/lab/, captured by tests/lab/test_nic_macs_lab.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops_lab import nicview as nv
from tests.unit.test_image_nmprofiles import ini

LAB = Path(__file__).parent.parent / "fixtures" / "images" / "nm" / "lab"


def text(case: str, name: str) -> str:
    return (LAB / case / name).read_text()


ETH, ENP = ("eth0", "eth1"), ("enp1s0", "enp2s0")


@pytest.mark.parametrize(("case", "names"), [("eth-tweaks", ETH), ("eth-nocloud", ETH), ("enp-tweaks", ENP),
                                            ("enp-nocloud", ENP)])
def test_each_nic_by_its_mac_with_its_address(case: str, names: tuple[str, str]) -> None:
    links = nv.parse_links(text(case, "ip_j_address_show.json"))
    assert [ln.name for ln in links] == list(names)  # lo is no ethernet link
    profiles = [ini(p.read_text()) for p in sorted((LAB / case).glob("*.nmconnection"))]
    for cp in profiles:  # the NIC with the profile's MAC has the profile's address
        link = nv.NicView(links, (), {}, (), {}, {}).by_mac(cp["ethernet"]["mac-address"])
        assert link is not None and link.addresses == (cp["ipv4"]["address1"].split(",")[0],)


def test_with_dash_4_ip_shows_no_mac_so_the_view_does_not_use_it() -> None:
    assert nv.parse_links(text("eth-tweaks", "ip_j_4_address_show.json")) == ()


@pytest.mark.parametrize(("case", "route"), [("eth-tweaks", nv.Route("10.5.68.254", "eth0")),
                                             ("eth-nocloud", nv.Route("132.230.223.254", "eth1"))])
def test_the_default_route(case: str, route: nv.Route) -> None:
    assert nv.parse_routes(text(case, "ip_j_4_route_show_default.json")) == (route,)
    assert nv.parse_routes("") == ()


def test_resolv_conf_nameservers() -> None:
    assert nv.parse_resolv("# generated\nsearch lab\nnameserver 132.230.200.200\nnameserver\n") == ("132.230.200.200",)
