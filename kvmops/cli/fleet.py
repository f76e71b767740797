"""``kvmops fleet inventory|fits``: every host of a fleet read in parallel, and which hosts
have room for a new guest. Hosts come from site files or an Ansible inventory (``--fleet``)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from kvmops.facts.fleet import load_fleet, read_fleet
from kvmops.fleet.hosts import DEFAULT_GROUP
from kvmops.fleet.reading import HostReading
from kvmops.fleet.room import Room, fit, ranked, render, room_of
from kvmops.guests.spec import memory_kib
from kvmops.hostfacts import Wanted
from kvmops.net.validate import vlan_id
from kvmops.runbook.journal import journal_dir, private_dir, private_file
from kvmops.units import human, parse_size

FLEET_KIND = "fleet-inventory"


def add_fleet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fleet", action="append", required=True, metavar="SOURCE",
                   help="a site file (.toml) or an Ansible inventory (a YAML, INI or TOML file or folder, read "
                        "with ansible-core's library; or the JSON of ansible-inventory --list); repeatable")
    p.add_argument("--inventory-plugins", action="store_true",
                   help="let Ansible use its configured inventory plugins and scripts (constructed, generator, "
                        "executable inventories): they may run commands. Default: inventories are read as data "
                        "(YAML, INI, TOML) with kvmops' own Ansible settings")
    p.add_argument("--group", default=DEFAULT_GROUP,
                   help=f"the inventory group of the KVM hosts (default {DEFAULT_GROUP})")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a host may take to answer (default 60)")
    p.add_argument("--concurrency", type=int, default=8, help="hosts read at once (default 8)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fleet = sub.add_parser("fleet", help="several hosts: inventory and room (site files or an Ansible inventory)")
    cmds = fleet.add_subparsers(dest="fleet_cmd", required=True)
    p = cmds.add_parser("inventory", help="every host's guests, VG free, memory/vCPUs committed, snapshots")
    add_fleet(p)
    p.add_argument("--journal", metavar="DIR", help="journal folder for the record (default: the journal)")
    p.set_defaults(func=cmd_inventory)
    p = cmds.add_parser("fits", help="which hosts have room for a new guest of this size")
    add_fleet(p)
    p.add_argument("--memory", required=True, help="the guest's memory, e.g. 4g")
    p.add_argument("--vcpus", type=int, required=True, help="the guest's vCPUs")
    p.add_argument("--disk", required=True, help="its disk LV, e.g. 20g")
    p.add_argument("--vlan", action="append", default=[], help="a VLAN it needs (repeatable)")
    p.add_argument("--reserve", default="2g", help="memory kept for each host itself (default 2g)")
    p.add_argument("--overcommit", type=float, default=4.0, help="vCPUs per host CPU at most (default 4)")
    p.set_defaults(func=cmd_fits)


def _read(args: argparse.Namespace, wanted: Wanted | None = None) -> tuple[HostReading, ...]:
    hosts = load_fleet(args.fleet, args.group, plugins=args.inventory_plugins)
    return read_fleet(hosts, wanted=wanted, concurrency=args.concurrency, timeout=args.timeout,
                      progress=lambda line: print(f"  {line}", flush=True))


def cmd_inventory(args: argparse.Namespace) -> int:
    rooms = [room_of(r) for r in _read(args)]
    print(render(rooms))
    path = record(rooms, Path(args.journal) if args.journal else None)
    print(f"\nrecord: {path}")
    return 0 if all(r.reachable for r in rooms) else 1


def record(rooms: list[Room], folder: Path | None = None) -> Path:
    """The fleet inventory as a journal record (the manual's fleet page reads the newest)."""
    now = datetime.now(UTC)
    out = private_dir(private_dir(journal_dir(folder)) / f"{now:%Y%m%dT%H%M%SZ}-{FLEET_KIND}")
    data = {"kind": FLEET_KIND, "taken": now.isoformat(timespec="seconds"), "hosts": [asdict(r) for r in rooms]}
    return private_file(out / "fleet.json", json.dumps(data, indent=1) + "\n")


def cmd_fits(args: argparse.Namespace) -> int:
    memory = memory_kib(args.memory) * 1024
    disk, reserve = parse_size(args.disk), parse_size(args.reserve)
    vlans = [vlan_id(v) for v in args.vlan]
    rooms = [room_of(r) for r in _read(args, Wanted(net=bool(vlans)))]
    fits = ranked([fit(r, memory, args.vcpus, disk, vlans, reserve=reserve, overcommit=args.overcommit)
                   for r in rooms])
    for f in fits:
        if f.fits:
            print(f"FITS     {f.name}: {human(f.memory_left)} memory and {human(f.disk_left)} of VG left after it")
        else:
            print(f"no       {f.name}: {'; '.join(f.reasons)}")
    best = next((f for f in fits if f.fits), None)
    print(f"\nbest: {best.name}" if best else "\nno host has room for it")
    return 0 if best else 1
