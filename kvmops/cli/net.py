"""``kvmops net``: guest bridges (guide 2.2) and static guest addresses (guide 3.3.3)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from kvmops.cli.common import command, facts_of, host_of, option, plan_and_apply, show_and_apply, site_of
from kvmops.errors import InvalidInput
from kvmops.host import Host
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.net import address, drift, nics, ops, registry, validate
from kvmops.procedures import host_network, net_address
from kvmops.procedures.base import Verdict


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    net = sub.add_parser("net", help="guest bridges and static addresses (guide 2.2, 3.3.3)")
    cmds = net.add_subparsers(dest="net_cmd", required=True)
    command(cmds, "list", "bridges on the host and their drift from the site's networks", cmd_list)
    command(cmds, "bridge", "create or fix the bridge virbr1.VLAN and its VLAN port", cmd_bridge,
            option("vlan", help="VLAN id of a network in the site file, e.g. 2368"),
            option("--stp", choices=("on", "off"),
                   help="STP (new bridges: off; existing bridges keep theirs unless given)"), effect="changes")
    command(cmds, "remove", "delete a guest bridge (needs --confirm BRIDGE; no guests on it)", cmd_remove,
            option("bridge", help="bridge name (virbr1.2368) or VLAN id"), effect="destroys")
    command(cmds, "address", "check a guest's static addresses (one per VLAN); show the guest-side settings",
            cmd_address, _address_options, effect="changes")
    command(cmds, "addresses", "the static addresses kvmops recorded", cmd_addresses)
    command(cmds, "release", "forget a guest's recorded address(es)", cmd_release, option("guest"),
            option("--vlan", help="only this VLAN's address"), effect="changes")


def _address_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("guest")
    p.add_argument("--vlan", help="the guest's VLAN of --ip, e.g. 2368")
    p.add_argument("--ip", help="e.g. 10.5.68.237 (or 10.5.68.237/24)")
    p.add_argument("--address", action="append", default=[], metavar="VLAN=IP",
                   help="a static address on the guest's NIC of VLAN (repeat, or comma-separated as guest-create's "
                        "addresses: 2368=10.5.68.237,223=132.230.223.200)")
    p.add_argument("--gateway-vlan", default="0",
                   help="the VLAN whose NIC carries the default route (default: the first given)")
    p.add_argument("--dns", action="append", help="DNS server (repeat; default: the site's); set on one NIC")
    p.add_argument("--record", action="store_true",
                   help="record them in <xml_dir>/addresses.toml (with --apply)")


def cmd_list(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        report = drift.drift_report(host.site, facts_of(host, host_network.wanted()).net)
        print(drift.render(report))
    return 0 if report.ok else 1


def cmd_bridge(args: argparse.Namespace) -> int:
    stp = None if args.stp is None else args.stp == "on"
    ops.need_network(site_of(args), args.vlan)  # bad VLAN: error before connecting
    return plan_and_apply(args, lambda facts: ops.ensure_network(facts, args.vlan, stp), host_network.wanted())


def cmd_remove(args: argparse.Namespace) -> int:
    bridge = ops.need_network(site_of(args), args.bridge)
    return plan_and_apply(args, lambda facts: ops.remove_bridge(facts, bridge), host_network.wanted())


def _given(args: argparse.Namespace) -> dict[int, str]:
    """VLAN -> address from --vlan/--ip and --address, in the order given."""
    if (args.vlan is None) != (args.ip is None):
        raise InvalidInput("give --vlan and --ip together (or --address VLAN=IP)")
    given = {validate.vlan_id(args.vlan): args.ip} if args.vlan is not None else {}
    for vid, ip in nics.parse_addresses(",".join(args.address), "--address").items():
        if vid in given:
            raise InvalidInput(f"--address: VLAN {vid} is given twice (one static address per VLAN)")
        given[vid] = ip
    if not given:
        raise InvalidInput("give the addresses: --vlan VLAN --ip IP, or --address VLAN=IP (repeatable)")
    return given


def cmd_address(args: argparse.Namespace) -> int:
    given = _given(args)
    nics.from_pairs(site_of(args), args.guest, list(given), given, gateway_vlan=args.gateway_vlan,
                    dns=args.dns)  # bad input: error before connecting
    with host_of(args) as host:
        wanted = net_address.wanted(host.site)
        facts = facts_of(host, wanted)
        found = net_address.check_all(facts, args.guest, given, gateway_vlan=args.gateway_vlan, dns=args.dns)
        print("\n\n".join(address.summary(a) for a in found))
        if len(found) > 1:
            print(f"\nroutes: {nics.routes_note([a.network.vlan for a in found], found)}")
        path = registry.registry_path(host.site)
        if not args.record:
            print(f"\n(not recorded: add --record --apply to keep {'them' if len(found) > 1 else 'it'} in {path})")
            return 0
        print()
        show_and_apply(host, net_address.record_all(facts, found), args, facts)
        return _verified(host, wanted, lambda now: net_address.verify_recorded_all(now, found))


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
