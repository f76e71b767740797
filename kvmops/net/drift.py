"""Drift report: the host's bridges compared with the site's networks table (pure).

For each network the site lists: the bridge exists as an active NetworkManager profile, its
ageing time is 0 (profile and kernel), its IP configuration is disabled (profile methods
``disabled``, no address on the interface), and its VLAN port ``<uplink>.<vlan>`` is a VLAN of
that id on the uplink, enslaved to the bridge. Bridges named like guest bridges that the site
does not list are reported too. STP is a note, not drift: the guide does not mention it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kvmops.net.facts import NetFacts
from kvmops.net.iplink import Link
from kvmops.net.nmcli import Profile
from kvmops.site import Network, Site

DRIFT = "drift"
NOTE = "note"


@dataclass(frozen=True)
class Finding:
    """One thing that differs from the guide, and what fixes it."""

    bridge: str
    problem: str
    fix: str
    severity: str = DRIFT


@dataclass(frozen=True)
class BridgeStatus:
    """One bridge: what the site wants (``network``; None for an extra) and what exists."""

    bridge: str
    network: Network | None
    profile: Profile | None
    link: Link | None
    port_profile: Profile | None
    port_link: Link | None
    ports: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.severity == DRIFT for f in self.findings)


@dataclass(frozen=True)
class DriftReport:
    statuses: tuple[BridgeStatus, ...]
    general: tuple[Finding, ...] = ()

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.general + tuple(f for s in self.statuses for f in s.findings)

    @property
    def drift(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == DRIFT)

    @property
    def ok(self) -> bool:
        return not self.drift


def guest_bridge_pattern(site: Site) -> re.Pattern[str]:
    """Names like the site's guest bridges: ``virbr1.<digits>``."""
    prefixes = {n.bridge[: -len(str(n.vlan))] for n in site.networks if n.bridge.endswith(str(n.vlan))}
    alts = "|".join(sorted(re.escape(p) for p in prefixes if p)) or re.escape("virbr1.")
    return re.compile(rf"^(?:{alts})\d+$")


def drift_report(site: Site, facts: NetFacts) -> DriftReport:
    """Compare every site network with the facts; add extra guest-like bridges."""
    general: list[Finding] = []
    if not facts.nm_running:
        general.append(Finding("*", f"NetworkManager not reachable: {facts.nm_error}",
                               "start NetworkManager; kvmops manages bridges through it"))
    statuses = [check_network(site, facts, n) for n in site.networks]
    pattern = guest_bridge_pattern(site)
    wanted = {n.bridge for n in site.networks}
    statuses += [_extra(facts, b) for b in facts.bridges() if pattern.match(b) and b not in wanted]
    return DriftReport(tuple(statuses), tuple(general))


def check_network(site: Site, facts: NetFacts, net: Network) -> BridgeStatus:
    """The status of one site network's bridge and VLAN port."""
    bridge = net.bridge
    profiles = facts.bridge_profiles(bridge)
    profile = profiles[0] if profiles else None
    link = facts.link(bridge)
    found = _bridge_findings(bridge, net.vlan, profiles, link, facts.nm_running)
    port_profile, port_link, port_found = _port(site, facts, net)
    if profiles or link is not None:  # a missing bridge: its port is missing too, one finding
        found += port_found
    ports = tuple(p.name for p in facts.ports(bridge))
    return BridgeStatus(bridge, net, profile, link, port_profile, port_link, ports, tuple(found))


def _bridge_findings(bridge: str, vlan: int, profiles: tuple[Profile, ...], link: Link | None,
                     nm_running: bool) -> list[Finding]:
    out: list[Finding] = []
    create = f"kvmops net bridge {vlan} --apply"
    if not profiles and link is None:
        return [Finding(bridge, "bridge missing", create)]
    if not profiles and nm_running:
        out.append(Finding(bridge, "bridge exists but has no NetworkManager profile",
                           f"delete it (ip link delete {bridge}) and run: {create}"))
    if len(profiles) > 1:
        out.append(Finding(bridge, f"{len(profiles)} NetworkManager profiles for one bridge: "
                           + ", ".join(p.uuid for p in profiles), "delete the extra profiles"))
    for p in profiles[:1]:
        out += _profile_findings(bridge, vlan, p)
    if link is not None:
        out += _link_findings(bridge, vlan, link)
    elif profiles:
        out.append(Finding(bridge, "profile is not active (no such interface)", create))
    return out


def _profile_findings(bridge: str, vlan: int, p: Profile) -> list[Finding]:
    fix = f"kvmops net bridge {vlan} --apply"
    out = []
    if p.ageing_time != 0:
        out.append(Finding(bridge, f"ageing time {p.ageing_time} s in profile {p.id!r}, must be 0", fix))
    for fam, method in (("ipv4", p.ipv4_method), ("ipv6", p.ipv6_method)):
        if method != "disabled":
            out.append(Finding(bridge, f"{fam}.method is {method!r}, must be 'disabled'", fix))
    if p.stp:
        out.append(Finding(bridge, "STP is on: a new guest port waits ~30 s before it forwards",
                           f"kvmops net bridge {vlan} --stp off --apply", NOTE))
    return out


def _link_findings(bridge: str, vlan: int, link: Link) -> list[Finding]:
    fix = f"kvmops net bridge {vlan} --apply"
    out = []
    if not link.is_bridge:
        return [Finding(bridge, f"interface {bridge} is a {link.kind or 'plain'} link, not a bridge",
                        "rename or remove it")]
    if link.ageing_cs not in (0, None):
        out.append(Finding(bridge, f"kernel ageing_time is {link.ageing_seconds:g} s, must be 0", fix))
    if link.addresses:
        out.append(Finding(bridge, "has IP addresses " + ", ".join(link.addresses)
                           + " (IP configuration must be disabled)", fix))
    if link.vlan_filtering:
        out.append(Finding(bridge, "VLAN filtering is on: untagged guest ports need a PVID",
                           "check `bridge vlan show`", NOTE))
    return out


def _port(site: Site, facts: NetFacts, net: Network) -> tuple[Profile | None, Link | None, list[Finding]]:
    bridge, ifname = net.bridge, f"{site.uplink}.{net.vlan}"
    fix = f"kvmops net bridge {net.vlan} --apply"
    out: list[Finding] = []
    profiles = facts.port_profiles(bridge)
    prof = profiles[0] if profiles else None
    if prof is None and facts.nm_running:
        others = facts.vlan_profiles_named(ifname)
        why = (f"VLAN profile {others[0].id!r} for {ifname} is not a port of {bridge}" if others
               else f"VLAN port {ifname} missing (no VLAN profile with master {bridge})")
        out.append(Finding(bridge, why, fix))
    elif prof is not None:
        if prof.vlan_id != net.vlan:
            out.append(Finding(bridge, f"VLAN port {prof.id!r} has id {prof.vlan_id}, must be {net.vlan}", fix))
        if prof.vlan_parent != site.uplink:
            out.append(Finding(bridge, f"VLAN port {prof.id!r} is on {prof.vlan_parent!r}, "
                               f"must be on the uplink {site.uplink}", fix))
    vlan_links = [lk for lk in facts.ports(bridge) if lk.is_vlan]
    link = vlan_links[0] if vlan_links else None
    if link is None:
        out.append(Finding(bridge, f"no VLAN interface is a port of {bridge} in the kernel",
                           f"check the uplink {site.uplink} exists and is up; then: {fix}"))
    elif link.vlan_id != net.vlan or link.parent != site.uplink:
        out.append(Finding(bridge, f"kernel port {link.name} is VLAN {link.vlan_id} on {link.parent!r}, "
                           f"must be VLAN {net.vlan} on {site.uplink}", fix))
    return prof, link, out


def _extra(facts: NetFacts, bridge: str) -> BridgeStatus:
    profiles = facts.bridge_profiles(bridge)
    ports = tuple(p.name for p in facts.ports(bridge))
    why = "bridge named like a guest bridge but not in the site's networks"
    fix = "add the network to the site file, or remove it (kvmops net remove)"
    return BridgeStatus(bridge, None, profiles[0] if profiles else None, facts.link(bridge),
                        None, None, ports, (Finding(bridge, why, fix),))


def render(report: DriftReport) -> str:
    """A table of the bridges, then each finding with its fix."""
    head: tuple[str, ...] = ("VLAN", "BRIDGE", "PROFILE", "AGEING", "STP", "IP", "VLAN PORT", "PORTS",
                             "STATUS")
    rows = [head, *(_row(s) for s in report.statuses)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for f in report.findings:
        lines.append(f"{f.severity.upper()}: {f.bridge}: {f.problem}\n    fix: {f.fix}")
    if report.ok:
        lines.append("no drift: every site network matches the guide")
    return "\n".join(lines)


def _row(s: BridgeStatus) -> tuple[str, ...]:
    p, lk = s.profile, s.link
    profile = "-" if p is None else ("active" if p.device else "inactive")
    ageing = "-" if lk is None or lk.ageing_seconds is None else f"{lk.ageing_seconds:g}s"
    stp = "-" if lk is None or lk.stp_state is None else ("on" if lk.stp_state else "off")
    ip = "-" if p is None else ("disabled" if (p.ipv4_method, p.ipv6_method) == ("disabled", "disabled")
                                else f"{p.ipv4_method}/{p.ipv6_method}")
    if lk is not None and lk.addresses:
        ip = "addr" if p is None else ip + "+addr"
    port = "-" if s.port_link is None else f"{s.port_link.name}(id {s.port_link.vlan_id})"
    if s.port_link is None and s.port_profile is not None:
        port = f"{s.port_profile.interface_name}(down)"
    vlan = "extra" if s.network is None else str(s.network.vlan)
    status = "ok" if s.ok else "DRIFT"
    return (vlan, s.bridge, profile, ageing, stp, ip, port, ",".join(s.ports) or "-", status)
