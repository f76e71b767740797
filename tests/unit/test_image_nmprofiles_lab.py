"""The static-address tweak on the profiles real booted guests had (issue 24): what kvmops'
keyfiles and cloud-init's looked like inside the lab's realistic image after its first boot
with two NICs, static addresses on both (captured by tests/lab/test_nic_macs_lab.py with
KVMOPS_LAB_NIC_CAPTURE; tests/fixtures/images/nm/lab/README.md).

- kvmops' own keyfiles, as NetworkManager kept them through the boot, are what the tweak wants:
  run again for the same NICs it changes no profile;
- cloud-init's keyfiles (matched by MAC) are edited in place for the same NICs, stay bound by
  MAC, never get a name; for other MACs (an image made from a booted guest) they bind no NIC and
  are left alone, each NIC gets a keyfile of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops.images import tweaks as t
from kvmops.plan import Plan
from tests.unit.test_image_nmprofiles import GRUB_ETH, GRUB_PREDICTABLE, KEYFILE, NM, addr, ini, written
from tests.unit.test_image_tweaks import image, plans

LAB = Path(__file__).parent.parent / "fixtures" / "images" / "nm" / "lab"
GRUB = {"eth": GRUB_ETH, "enp": GRUB_PREDICTABLE}
# the lab test's guests: addresses of NIC 1 (VLAN 2368) and NIC 2 (VLAN 223), the NIC with the default route
CASES = {"eth-tweaks": ("10.5.68.71", "132.230.223.71", 0), "eth-nocloud": ("10.5.68.72", "132.230.223.72", 1),
         "enp-tweaks": ("10.5.68.73", "132.230.223.73", 1), "enp-nocloud": ("10.5.68.74", "132.230.223.74", 0)}
CLOUD_CFG = "/etc/cloud/cloud.cfg.d/99-kvmops-network.cfg"


def captured(case: str) -> dict[str, str]:
    """The keyfiles the booted guest had: path in the image -> content."""
    found = {f"{NM}/{p.name}": p.read_text() for p in sorted((LAB / case).glob("*.nmconnection"))}
    assert found, f"no keyfiles captured for {case}"
    return found


def mac_of(text: str) -> str:
    return ini(text)["ethernet"]["mac-address"].lower()


def tweak(case: str, macs: tuple[str, str], ips: tuple[str, str] | None = None) -> t.StaticIp:
    one, two, route = CASES[case]
    ips = ips or (one, two)
    return t.StaticIp(addr(0, macs[0], ip=ips[0], route=route == 0, dns=route == 0).nics
                      + addr(1, macs[1], vlan=223, ip=ips[1], route=route == 1, dns=route == 1).nics)


def run(case: str, files: dict[str, str], static: t.StaticIp) -> tuple[Plan, dict[str, str]]:
    naming = case.split("-")[0]
    fake = image({**files, "/etc/default/grub": GRUB[naming]}, stats=dict.fromkeys(files, KEYFILE))
    (plan,) = plans(fake, static)
    return plan, written(plan)


def macs_in(files: dict[str, str]) -> tuple[str, str]:
    """The two NICs' MACs, NIC 1's first (its profile holds the VLAN 2368 address)."""
    by_vlan = sorted(files.values(), key=lambda text: "10.5.68." not in text)
    first, second = (mac_of(text) for text in by_vlan)
    return first, second


@pytest.mark.parametrize("case", ["eth-tweaks", "enp-tweaks"])
def test_kvmops_keyfiles_as_the_booted_guest_kept_them_need_no_change(case: str) -> None:
    files = captured(case)
    plan, out = run(case, files, tweak(case, macs_in(files)))
    assert set(out) <= {CLOUD_CFG}, plan.render()  # no profile rewritten: NetworkManager kept them as written
    again, _ = run(case, {**files, **out}, tweak(case, macs_in(files)))
    assert again.empty, again.render()


@pytest.mark.parametrize("case", ["eth-nocloud", "enp-nocloud"])
def test_cloud_inits_keyfiles_of_a_booted_guest_are_edited_in_place_by_mac(case: str) -> None:
    files = captured(case)
    macs = macs_in(files)
    ips = ("10.5.68.90", "132.230.223.90")
    plan, out = run(case, files, tweak(case, macs, ips))
    profiles = {p: text for p, text in out.items() if p.startswith(NM)}
    assert set(profiles) == set(files), plan.render()  # the same files, no new keyfile competing with them
    gateways = 0
    for path, text in profiles.items():
        cp, before = ini(text), ini(files[path])
        assert "interface-name" not in cp["connection"] and cp["ethernet"]["mac-address"] == \
            before["ethernet"]["mac-address"], text
        assert dict(cp["connection"]) == dict(before["connection"])  # cloud-init's id and uuid kept
        assert cp["ipv4"]["method"] == "manual" and cp["ipv4"]["address1"].split(",")[0].split("/")[0] in ips
        gateways += "," in cp["ipv4"]["address1"]
    assert gateways == 1
    again, _ = run(case, {**files, **out}, tweak(case, macs, ips))
    assert again.empty, again.render()


@pytest.mark.parametrize("case", ["eth-nocloud", "enp-nocloud"])
def test_a_booted_guests_profiles_for_other_macs_are_left_alone(case: str) -> None:
    """An image made from a booted guest: cloud-init's profiles are bound to MACs of no NIC of the
    new guest; they are left as they are, and each NIC gets a keyfile bound to its own MAC."""
    files = captured(case)
    new = ("52:54:00:00:00:01", "52:54:00:00:00:02")
    plan, out = run(case, files, tweak(case, new))
    assert not set(out) & set(files), plan.render()
    keyfiles = {mac_of(text): ini(text) for p, text in out.items() if p.startswith(NM)}
    assert set(keyfiles) == set(new)
    assert all("interface-name" not in cp["connection"] for cp in keyfiles.values())


def default_routes(text: str) -> int:
    """How many default routes a keyfile gives: a gateway on an address, a 0.0.0.0/0 route."""
    ipv4 = ini(text)["ipv4"]
    by_address = sum("," in v for k, v in ipv4.items() if k.startswith("address"))
    by_route = sum(v.startswith("0.0.0.0/0") for k, v in ipv4.items() if k.startswith("route") and k[5:].isdigit())
    return by_address + by_route


@pytest.mark.parametrize("case", ["eth-nocloud", "enp-nocloud"])
def test_the_default_route_moves_to_the_nic_asked_and_is_left_on_no_other(case: str) -> None:
    """cloud-init put the default route on one NIC (``route1=0.0.0.0/0,GW``); asked on the other
    NIC, the tweak leaves exactly one default route in the guest's profiles, on that NIC."""
    files = captured(case)
    macs = macs_in(files)
    route_now = CASES[case][2]
    assert [default_routes(files[p]) for p in sorted(files, key=lambda p: "10.5.68." not in files[p])] == \
        [int(route_now == 0), int(route_now == 1)]
    moved = {**CASES, case: (*CASES[case][:2], 1 - route_now)}
    static = t.StaticIp(addr(0, macs[0], ip=moved[case][0], route=route_now == 1, dns=route_now == 1).nics
                        + addr(1, macs[1], vlan=223, ip=moved[case][1], route=route_now == 0, dns=route_now == 0).nics)
    plan, out = run(case, files, static)
    after = {**files, **{p: text for p, text in out.items() if p.startswith(NM)}}
    ordered = sorted(after, key=lambda p: "10.5.68." not in after[p])
    assert [default_routes(after[p]) for p in ordered] == [int(route_now == 1), int(route_now == 0)], plan.render()
