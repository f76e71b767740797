"""Issue 24 item 4, what a two-NIC guest made by guest-create shows from outside: one case
(naming scheme, setup, a static address per NIC, the NIC of the default route) and the checks
on what its boot saw. Used by tests/lab/test_runbook_guests.py (the default pair, whose boots
also prove the runbooks) and tests/lab/test_nic_macs_lab.py (the other combinations, opt-in).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kvmops_lab import nicview as nv

VLANS = (2368, 223)
GATEWAYS = {2368: "10.5.68.254", 223: "132.230.223.254"}
DNS = "132.230.200.200"  # the lab site's network.dns (the guide's DNS server)


@dataclass(frozen=True)
class NicCase:
    name: str
    naming: str  # "eth" (net.ifnames=0) or "enp" (predictable)
    setup: str
    addresses: tuple[str, str]  # NIC 1 (VLAN 2368), NIC 2 (VLAN 223)
    gateway_vlan: int  # 0: the first

    @property
    def route_vlan(self) -> int:
        return self.gateway_vlan or VLANS[0]

    def names(self) -> tuple[str, str]:
        return ("eth0", "eth1") if self.naming == "eth" else ("enp1s0", "enp2s0")

    def route_nic(self) -> str:
        return self.names()[VLANS.index(self.route_vlan)]

    def more(self) -> tuple[tuple[int, str], ...]:
        """(VLAN, address) of the NICs after the first, as guest-create and boot_from_lab take them."""
        return ((VLANS[1], self.addresses[1]),)


@dataclass(frozen=True)
class Seen:
    """What the guest-create run printed and what the guest's first boot showed."""

    case: NicCase
    plan_text: str  # the guest-create run's notebook output
    macs: tuple[str, ...]  # of the lab's definition
    booted: bool
    verdict: str
    reached: tuple[str, ...] = ()  # `hostname -I` through each NIC's forwarded SSH port
    view: nv.NicView | None = None
    cloud_init: str = ""


def plan_showed_each_mac(seen: Seen) -> None:
    assert len(seen.macs) == 2 and all(m.startswith("52:54:00:") for m in seen.macs), seen.macs
    for i, (vlan, mac) in enumerate(zip(VLANS, seen.macs, strict=True)):
        assert f"NIC {i + 1}: VLAN {vlan}, bridge virbr1.{vlan}, MAC {mac}" in seen.plan_text
        assert f"add a reservation for {seen.case.addresses[i]} (guest {seen.case.name}) with MAC {mac}" \
            in seen.plan_text
    assert "configures only eth0" not in seen.plan_text


def ssh_reaches_each_address(seen: Seen) -> None:
    assert seen.booted, seen.verdict
    if seen.case.setup == "nocloud":
        assert "status: done" in seen.cloud_init, seen.cloud_init
    assert len(seen.reached) == 2
    for through in seen.reached:  # `hostname -I` through each NIC's own forwarded port
        assert set(seen.case.addresses) <= set(through.split()), through


def each_nic_by_mac_has_its_address(seen: Seen) -> None:
    assert seen.view is not None, seen.verdict
    for mac, name, ip in zip(seen.macs, seen.case.names(), seen.case.addresses, strict=True):
        link = seen.view.by_mac(mac)
        assert link is not None, (mac, seen.view.links)
        assert (link.name, link.addresses) == (name, (f"{ip}/24",)), link


def one_default_route_and_dns_once(seen: Seen) -> None:
    assert seen.view is not None, seen.verdict
    vlan = seen.case.route_vlan
    dev = seen.case.route_nic()
    assert seen.view.default_routes == (nv.Route(GATEWAYS[vlan], dev),), seen.view.default_routes
    assert f"default route via {GATEWAYS[vlan]} on NIC {VLANS.index(vlan) + 1} (VLAN {vlan})" in seen.plan_text
    other = seen.case.names()[1 - VLANS.index(vlan)]
    assert seen.view.dns_by_dev[dev] == (DNS,) and seen.view.dns_by_dev[other] == (), seen.view.dns_by_dev
    assert DNS in seen.view.resolv_conf, seen.view.resolv_conf


def one_profile_per_nic_bound_by_its_mac(seen: Seen) -> None:
    assert seen.view is not None, seen.verdict
    bound: dict[str, list[str]] = {}
    for name, text in seen.view.profiles.items():
        macs = [ln.split("=", 1)[1].strip().lower() for ln in text.splitlines() if ln.startswith("mac-address=")]
        assert not (macs and any(ln.startswith("interface-name=") for ln in text.splitlines())), (name, text)
        for m in macs:
            bound.setdefault(m, []).append(name)
    assert {m: len(bound.get(m, [])) for m in seen.macs} == {m: 1 for m in seen.macs}, seen.view.profiles.keys()
    if seen.case.setup == "nocloud":  # cloud-init's (named after the seed's entry ids, nic1/nic2)
        for m in seen.macs:
            assert "origin=cloud-init" in seen.view.profiles[bound[m][0]], bound[m]


Check = Callable[[Seen], None]
CHECKS: tuple[Check, ...] = (plan_showed_each_mac, ssh_reaches_each_address, each_nic_by_mac_has_its_address,
          one_default_route_and_dns_once, one_profile_per_nic_bound_by_its_mac)


def capture(label: str, view: nv.NicView | None) -> None:
    """With ``KVMOPS_LAB_NIC_CAPTURE=DIR``: the guest's profiles and ``ip -j`` outputs kept in
    DIR/LABEL (fixtures for the unit tier)."""
    folder = os.environ.get("KVMOPS_LAB_NIC_CAPTURE")
    if not folder or view is None:
        return
    out = Path(folder) / label
    out.mkdir(parents=True, exist_ok=True)
    for name, text in view.profiles.items():
        (out / name).write_text(text)
    for command, text in view.raw.items():
        (out / (command.replace(" ", "_").replace("-", "") + ".json")).write_text(text)
