"""The network facts of a host: NetworkManager profiles and devices, kernel links, port VLANs.

:func:`read_facts` runs the read-only commands (also in plan mode):

    nmcli -t -e yes -f NAME,UUID,TYPE,DEVICE connection show
    nmcli -t -e yes -f connection.id,... connection show uuid U1 uuid U2   (bridges and VLANs)
    nmcli -t -e yes -f DEVICE,TYPE,STATE,CONNECTION device
    ip -j -d address show
    bridge -j vlan show
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kvmops.net.iplink import Link
from kvmops.net.nmcli import Device, Profile

MANAGED_TYPES = ("bridge", "vlan")


@dataclass(frozen=True)
class NetFacts:
    """Everything kvmops knows about the host's bridges, read at one moment."""

    profiles: tuple[Profile, ...] = ()
    devices: tuple[Device, ...] = ()
    links: tuple[Link, ...] = ()
    port_vlans: dict[str, tuple[int, ...]] = field(default_factory=dict)
    nm_running: bool = True
    nm_error: str = ""

    def link(self, name: str) -> Link | None:
        return next((lk for lk in self.links if lk.name == name), None)

    def device(self, name: str) -> Device | None:
        return next((d for d in self.devices if d.name == name), None)

    def bridge_profiles(self, bridge: str) -> tuple[Profile, ...]:
        """Bridge profiles for interface ``bridge`` (normally one)."""
        return tuple(p for p in self.profiles if p.type == "bridge" and p.interface_name == bridge)

    def port_profiles(self, bridge: str) -> tuple[Profile, ...]:
        """VLAN profiles whose master is the bridge (by profile id, UUID or interface name)."""
        refs = {bridge} | {r for p in self.bridge_profiles(bridge) for r in (p.id, p.uuid)}
        return tuple(p for p in self.profiles if p.type == "vlan" and p.master in refs)

    def vlan_profiles_named(self, ifname: str) -> tuple[Profile, ...]:
        return tuple(p for p in self.profiles if p.type == "vlan" and p.interface_name == ifname)

    def ports(self, bridge: str) -> tuple[Link, ...]:
        """Interfaces the kernel has enslaved to ``bridge``."""
        return tuple(lk for lk in self.links if lk.master == bridge)

    def bridges(self) -> tuple[str, ...]:
        """Names of bridges that exist as a profile or as a kernel link, sorted."""
        found = {p.interface_name for p in self.profiles if p.type == "bridge" and p.interface_name}
        found |= {lk.name for lk in self.links if lk.is_bridge}
        return tuple(sorted(found))


