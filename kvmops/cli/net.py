"""``kvmops net``: guest bridges (guide 2.2) and static guest addresses (guide 3.3.3)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from kvmops.cli.common import add_apply, add_site, facts_of, host_of, show_and_apply, site_of
from kvmops.host import Host
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.net import address, drift, ops, registry, validate
from kvmops.procedures import host_network, net_address
from kvmops.procedures.base import Verdict


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    net = sub.add_parser("net", help="guest bridges and static addresses (guide 2.2, 3.3.3)")
    cmds = net.add_subparsers(dest="net_cmd", required=True)

    p = cmds.add_parser("list", help="bridges on the host and their drift from the site's networks")
    add_site(p)
    p.set_defaults(func=cmd_list)

    p = cmds.add_parser("bridge", help="create or fix the bridge virbr1.VLAN and its VLAN port")
    p.add_argument("vlan", help="VLAN id of a network in the site file, e.g. 2368")
    p.add_argument("--stp", choices=("on", "off"),
                   help="STP (new bridges: off; existing bridges keep theirs unless given)")
    add_apply(p)
    p.set_defaults(func=cmd_bridge)

    p = cmds.add_parser("remove", help="delete a guest bridge (needs --confirm BRIDGE; no guests on it)")
    p.add_argument("bridge", help="bridge name (virbr1.2368) or VLAN id")
    add_apply(p, destructive=True)
    p.set_defaults(func=cmd_remove)

    p = cmds.add_parser("address", help="check a static guest address; show the guest-side settings")
    p.add_argument("guest")
    p.add_argument("--vlan", required=True, help="the guest's VLAN, e.g. 2368")
    p.add_argument("--ip", required=True, help="e.g. 10.5.68.237 (or 10.5.68.237/24)")
    p.add_argument("--dns", action="append", help="DNS server (repeat; default: the site's)")
    p.add_argument("--device", default="eth0", help="interface inside the guest (default eth0)")
    p.add_argument("--record", action="store_true",
                   help="record it in <xml_dir>/addresses.toml (with --apply)")
    add_apply(p)
    p.set_defaults(func=cmd_address)

    p = cmds.add_parser("addresses", help="the static addresses kvmops recorded")
    add_site(p)
    p.set_defaults(func=cmd_addresses)

    p = cmds.add_parser("release", help="forget a guest's recorded address(es)")
    p.add_argument("guest")
    p.add_argument("--vlan", help="only this VLAN's address")
    add_apply(p)
    p.set_defaults(func=cmd_release)


def cmd_list(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        report = drift.drift_report(host.site, facts_of(host, host_network.wanted()).net)
        print(drift.render(report))
    return 0 if report.ok else 1


def cmd_bridge(args: argparse.Namespace) -> int:
    stp = None if args.stp is None else args.stp == "on"
    ops.need_network(site_of(args), args.vlan)  # bad VLAN: error before connecting
    with host_of(args) as host:
        facts = facts_of(host, host_network.wanted())
        plan = ops.ensure_network(facts, args.vlan, stp)
        return show_and_apply(host, plan, args, facts)


def cmd_remove(args: argparse.Namespace) -> int:
    bridge = ops.need_network(site_of(args), args.bridge)
    with host_of(args) as host:
        facts = facts_of(host, host_network.wanted())
        plan = ops.remove_bridge(facts, bridge)
        return show_and_apply(host, plan, args, facts)


def cmd_address(args: argparse.Namespace) -> int:
    address.static_address(site_of(args), args.guest, args.vlan, args.ip, dns=args.dns,
                           device=args.device)  # bad input: error before connecting
    with host_of(args) as host:
        wanted = net_address.wanted(host.site)
        facts = facts_of(host, wanted)
        a = net_address.check(facts, args.guest, args.vlan, args.ip, dns=args.dns, device=args.device)
        print(address.summary(a))
        path = registry.registry_path(host.site)
        if not args.record:
            print(f"\n(not recorded: add --record --apply to keep it in {path})")
            return 0
        print()
        show_and_apply(host, net_address.record(facts, a), args, facts)
        return _verified(host, wanted, lambda now: net_address.verify_recorded(now, a))


def cmd_addresses(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        reg = registry.registry_of(facts_of(host, net_address.wanted(host.site)))
    print(f"# {reg.path}")
    for e in reg.entries:
        print(f"{e.vlan:>5}  {e.ip!s:<15}  {e.guest}")
    if not reg.entries:
        print("(no static addresses recorded)")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    vlan = validate.vlan_id(args.vlan) if args.vlan else None
    with host_of(args) as host:
        wanted = net_address.wanted(host.site)
        facts = facts_of(host, wanted)
        show_and_apply(host, net_address.release(facts, args.guest, vlan), args, facts)
        return _verified(host, wanted, lambda now: net_address.verify_released(now, args.guest, vlan))


def _verified(host: Host, wanted: Wanted, verdict: Callable[[HostFacts], Verdict]) -> int:
    """After an applied change: the host read again; exit 1 unless the verdict holds."""
    if not host.apply:
        return 0
    result = verdict(facts_of(host, wanted))
    print(result.render())
    return 0 if result.ok else 1
