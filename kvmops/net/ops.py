"""Bridge operations: the host's facts in, a :class:`Plan` out (guide 2.2, done with nmcli
instead of nmtui). Every operation takes :class:`~kvmops.hostfacts.HostFacts` read with
``Wanted(net=True)`` and does no I/O; only the checks after a change (waits) read the host.

A guest network is a bridge ``virbr1.<VLAN>`` (ageing time 0, IPv4/IPv6 disabled) with one
port, the tagged interface ``<uplink>.<VLAN>``. Correct profiles are no-ops; wrong settings
become ``nmcli connection modify`` + ``nmcli device reapply`` (reapply keeps guest ports
attached; re-activating the bridge with ``connection up`` would detach them).

Ageing time 0 is the guide's setting ("0 (infinity)" in nmtui), kept as the guide wants. In
the Linux bridge it means "forget at once", not "forever": the bridge learns no MAC address
and floods every unicast frame to every port, like a hub (measured in namespaces: 0 dynamic
FDB entries and 14 of A's and B's unicast frames seen at a third port; with 300 s: 3 entries,
0 frames). Guests on one bridge can see each other's unicast traffic; plans say so.

STP: new bridges get ``bridge.stp no``. NetworkManager turns STP on by default, and then every
new port (each guest's vnet at start) listens and learns for ~30 s before it forwards, so a
guest's early DHCP or boot traffic is lost. A guest bridge has one uplink port and guest taps,
so there is no loop for STP to break. Existing bridges keep their STP setting unless ``stp``
is given (the drift report notes STP on).
"""

from __future__ import annotations

from kvmops.errors import InvalidInput, KvmopsError, SafetyError
from kvmops.hostfacts import HostFacts
from kvmops.net import commands as c
from kvmops.net import validate
from kvmops.net.attached import bridge_free
from kvmops.net.drift import guest_bridge_pattern
from kvmops.net.facts import NetFacts
from kvmops.net.nmcli import Profile
from kvmops.plan import BridgeGone, BridgeReady, Plan, Wait
from kvmops.site import Network, Site

AGEING_NOTE = ("ageing time 0 (the guide's setting): the bridge learns no MAC addresses and floods "
               "every frame to every port, so guests on it see each other's unicast traffic")


class NotManaged(KvmopsError):
    """The bridge exists but not the way kvmops can manage it (no or several NM profiles)."""


def _need_nm(facts: NetFacts) -> None:
    if not facts.nm_running:
        raise NotManaged(
            f"NetworkManager is not reachable ({facts.nm_error}): kvmops manages bridges "
            "through it (guide 2.2); start NetworkManager first"
        )


def ensure_network(facts: HostFacts, vlan: int | str, stp: bool | None = None) -> Plan:
    """The guest network of a VLAN: its bridge, then its VLAN port, then a check.

    ``facts`` must hold the network facts (``read_facts(host, Wanted(net=True))``).
    """
    site = facts.site
    net = validate.network(site, vlan)
    validate.vlan_ifname(site.uplink, net.vlan)
    plan = Plan(f"guest network VLAN {net.vlan}: bridge {net.bridge} on {site.uplink}.{net.vlan}")
    plan.extend(ensure_bridge(facts, net.vlan, stp))
    plan.extend(ensure_vlan_port(facts, net.vlan))
    if not plan.empty:
        plan.add(f"check {net.bridge} on the host: ageing time 0, no IP address",
                 Wait(f"read `ip -j -d address show` and check {net.bridge}", BridgeReady(net.bridge)))
    return plan


def ensure_bridge(facts: HostFacts, vlan: int | str, stp: bool | None = None) -> Plan:
    """The bridge profile with the guide's settings, active."""
    net = validate.network(facts.site, vlan)
    nf = facts.net
    _need_nm(nf)
    bridge = net.bridge
    plan = Plan(f"bridge {bridge} (VLAN {net.vlan})")
    profiles = nf.bridge_profiles(bridge)
    if len(profiles) > 1:
        raise NotManaged(f"{len(profiles)} NetworkManager profiles for {bridge} "
                         f"({', '.join(p.uuid for p in profiles)}): delete all but one first")
    if not profiles:
        if nf.link(bridge) is not None:
            raise NotManaged(
                f"interface {bridge} exists but has no NetworkManager profile (made by another tool): "
                f"remove it (`ip link delete {bridge}`, after moving its guests) and run this again"
            )
        plan.notes.append(AGEING_NOTE)
        plan.add(f"add bridge profile {bridge}: ageing time 0, STP {'on' if stp else 'off'}, "
                 "IPv4/IPv6 disabled", c.add_bridge(bridge, stp=bool(stp)))
        return plan.add(f"activate {bridge}", c.up_named(bridge))
    return _converge_bridge(plan, nf, profiles[0], stp)


def _bridge_changes(p: Profile, stp: bool | None) -> tuple[str, ...]:
    out: list[str] = []
    if p.ageing_time != 0:
        out += ["bridge.ageing-time", "0"]
    if stp is not None and p.stp != stp:
        out += ["bridge.stp", "yes" if stp else "no"]
    for fam, method in (("ipv4", p.ipv4_method), ("ipv6", p.ipv6_method)):
        if method != "disabled":
            out += [f"{fam}.method", "disabled"]
    return tuple(out)


def _converge_bridge(plan: Plan, facts: NetFacts, p: Profile, stp: bool | None) -> Plan:
    bridge = p.interface_name
    changes = _bridge_changes(p, stp)
    link = facts.link(bridge)
    if changes:
        if "bridge.ageing-time" in changes:
            plan.notes.append(AGEING_NOTE)
        plan.add(f"fix profile {p.id!r}: " + ", ".join(f"{k}={v}" for k, v in zip(
            changes[::2], changes[1::2], strict=True)), c.modify(p.uuid, changes))
    else:
        plan.noop(f"profile {p.id!r} has the guide's settings (ageing 0, IP disabled)")
    if not p.device:
        plugged = [lk.name for lk in facts.ports(bridge) if not lk.is_vlan]
        if plugged:
            raise SafetyError(
                f"profile {p.id!r} is inactive but the kernel's {bridge} has the ports {', '.join(plugged)}: "
                "activating the profile (nmcli connection up) would detach them and cut those guests off. "
                f"Look at `nmcli device show {bridge}` first; nothing was changed"
            )
        return plan.add(f"activate {bridge} (profile inactive)", c.up(p.uuid))
    live_wrong = link is not None and (link.ageing_cs not in (0, None) or bool(link.addresses))
    if changes or live_wrong:
        return plan.add(f"apply the settings to the live {bridge}, guest ports stay attached",
                        c.reapply(bridge))
    return plan.noop(f"{bridge} is active with ageing time 0 and no address")


def ensure_vlan_port(facts: HostFacts, vlan: int | str) -> Plan:
    """The VLAN interface ``<uplink>.<vlan>`` as the bridge's port."""
    site, nf = facts.site, facts.net
    net = validate.network(site, vlan)
    ifname = validate.vlan_ifname(site.uplink, net.vlan)
    _need_nm(nf)
    plan = Plan(f"VLAN port {ifname} of {net.bridge}")
    ports = nf.port_profiles(net.bridge)
    if len(ports) > 1:
        raise NotManaged(f"{len(ports)} VLAN profiles are ports of {net.bridge}: "
                         f"{', '.join(p.id for p in ports)}; delete all but one first")
    prof = ports[0] if ports else next(iter(nf.vlan_profiles_named(ifname)), None)
    if prof is None:
        plan.add(f"add VLAN {net.vlan} on {site.uplink} as a port of {net.bridge}",
                 c.add_vlan_port(ifname, site.uplink, net.vlan, net.bridge))
        return _activate_port(plan, site, nf, ifname, None)
    changes = _port_changes(prof, site, net, ifname, is_port=bool(ports))
    if changes:
        plan.add(f"fix VLAN profile {prof.id!r}: " + ", ".join(changes[::2]), c.modify(prof.uuid, changes))
    else:
        plan.noop(f"VLAN profile {prof.id!r} is VLAN {net.vlan} on {site.uplink}, port of {net.bridge}")
    active = any(lk.is_vlan and lk.vlan_id == net.vlan for lk in nf.ports(net.bridge))
    if active and not changes:
        return plan.noop(f"{prof.interface_name} is a port of {net.bridge} in the kernel")
    return _activate_port(plan, site, nf, ifname, prof.uuid)


def _port_changes(p: Profile, site: Site, net: Network, ifname: str, is_port: bool) -> tuple[str, ...]:
    out: list[str] = []
    if not is_port:
        out += ["connection.master", net.bridge, "connection.slave-type", "bridge"]
    if p.vlan_id != net.vlan or p.vlan_parent != site.uplink:
        out += ["connection.interface-name", ifname, "vlan.parent", site.uplink, "vlan.id", str(net.vlan)]
    return tuple(out)


def _activate_port(plan: Plan, site: Site, facts: NetFacts, ifname: str, uuid: str | None) -> Plan:
    if facts.link(site.uplink) is None:
        plan.notes.append(f"uplink {site.uplink} does not exist on this host: {ifname} stays "
                          "inactive until it appears (NetworkManager then activates it)")
        return plan.noop(f"not activating {ifname}: no uplink {site.uplink}")
    cmd = c.up(uuid) if uuid else c.up_named(ifname)
    return plan.add(f"activate {ifname} (joins the bridge)", cmd)


def remove_bridge(facts: HostFacts, bridge: str) -> Plan:
    """Delete a guest bridge and its VLAN port profiles; needs ``confirm=<bridge>``.

    Refused for bridges not named like guest bridges, and while guests use it: any guest
    libvirt defines (running or not) that names it, or a guest NIC that is its port
    (:func:`kvmops.net.attached.bridge_free`, asked of ``facts``).
    """
    site = facts.site
    validate.bridge_name(bridge)
    if not guest_bridge_pattern(site).match(bridge):
        raise SafetyError(f"{bridge!r} is not named like a guest bridge of site {site.name}: "
                          "kvmops never removes host bridges")
    bridge_free(facts, bridge)
    nf = facts.net
    plan = Plan(f"remove bridge {bridge}")
    if bridge not in nf.bridges():
        return plan.noop(f"{bridge} does not exist")
    _need_nm(nf)
    if not nf.bridge_profiles(bridge):
        raise NotManaged(f"{bridge} has no NetworkManager profile: remove it with "
                         f"`ip link delete {bridge}` yourself")
    plan.notes.append(f"guests defined later with <source bridge='{bridge}'/> will fail to start")
    for p in nf.port_profiles(bridge):
        plan.add(f"delete VLAN port profile {p.id!r} ({p.interface_name})", c.delete(p.uuid), target=bridge)
    for p in nf.bridge_profiles(bridge):
        plan.add(f"delete bridge profile {p.id!r} (NetworkManager removes {bridge})",
                 c.delete(p.uuid), target=bridge)
    return plan.add(f"wait until {bridge} is gone", Wait(
        f"poll `ip -j link show dev {bridge}` until the interface is gone", BridgeGone(bridge)))


def need_network(site: Site, bridge_or_vlan: str) -> str:
    """``2368`` or ``virbr1.2368`` -> the bridge name (a VLAN must be in the site)."""
    if bridge_or_vlan.isdigit():
        return validate.network(site, bridge_or_vlan).bridge
    if not bridge_or_vlan:
        raise InvalidInput("give a VLAN id or a bridge name")
    return validate.bridge_name(bridge_or_vlan)
