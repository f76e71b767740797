"""``kvmops lv``: the guide's LVM tasks (4.2) as plans, executed only with --apply."""

from __future__ import annotations

import argparse

from kvmops.cli.common import add_apply, add_site, facts_of, host_of, show_and_apply
from kvmops.lvm import ops
from kvmops.lvm.facts import LV
from kvmops.units import human, parse_size

MERGE_INTERVAL = (1, 3600)  # seconds, as ops.merge accepts


def interval(text: str) -> int:
    """``--interval``: whole seconds, checked before anything is read (argparse exits 2)."""
    low, high = MERGE_INTERVAL
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{value}: give whole seconds from {low} to {high}")
    return value


def percent(text: str) -> float:
    """``--threshold``: a fill percentage above 0 and at most 100 (argparse exits 2 otherwise)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 100:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text}: give a fill percentage above 0 and at most 100")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lv = sub.add_parser("lv", help="guest logical volumes (guide 4.2)")
    cmds = lv.add_subparsers(dest="lv_cmd", required=True)

    p = cmds.add_parser("list", help="guest LVs of the site's VG (host LVs are never shown)")
    add_site(p)
    p.set_defaults(func=cmd_list)

    p = cmds.add_parser("create", help="lvcreate --name LV --size SIZE VG")
    p.add_argument("name", help="LV name, e.g. vmtest1 (must start with the site's prefix)")
    p.add_argument("--size", required=True, help="e.g. 10g (base-2: b s k m g t, any case)")
    add_apply(p)
    p.set_defaults(func=cmd_create)

    p = cmds.add_parser("rename", help="lvrename VG OLD NEW")
    p.add_argument("old")
    p.add_argument("new")
    add_apply(p)
    p.set_defaults(func=cmd_rename)

    p = cmds.add_parser("resize", help="lvresize --size SIZE VG/LV (shrinking needs --confirm)")
    p.add_argument("name")
    p.add_argument("--size", required=True)
    add_apply(p, destructive=True)
    p.set_defaults(func=cmd_resize)

    p = cmds.add_parser("snapshot", help="lvcreate --snapshot --name LV-YYYYMMDDTHHMMZ")
    p.add_argument("name")
    p.add_argument("--size", help="snapshot size (default: the site's snapshot_size)")
    add_apply(p)
    p.set_defaults(func=cmd_snapshot)

    p = cmds.add_parser("snapshots", help="every guest snapshot with how full it is (percent)")
    add_site(p)
    p.set_defaults(func=cmd_snapshots)

    p = cmds.add_parser("extend", help="grow snapshots above a fill threshold")
    p.add_argument("--threshold", type=percent, help="fill percent, above 0 and at most 100 (default: the site's)")
    p.add_argument("--by", help="how much to add (default: the site's)")
    add_apply(p)
    p.set_defaults(func=cmd_extend)

    p = cmds.add_parser("merge", help="lvconvert --mergesnapshot VG/SNAP (restores the origin)")
    p.add_argument("snapshot")
    p.add_argument("--interval", type=interval, default=10, help="progress interval in seconds (1-3600)")
    add_apply(p, destructive=True)
    p.set_defaults(func=cmd_merge)

    p = cmds.add_parser("remove", help="lvremove VG/LV (needs --confirm VG/LV)")
    p.add_argument("name")
    add_apply(p, destructive=True)
    p.set_defaults(func=cmd_remove)


def lv_table(lvs: tuple[LV, ...]) -> str:
    rows = [("LV", "ATTR", "SIZE", "ORIGIN", "FILL%", "CREATED")]
    for lv in lvs:
        fill = f"{lv.data_percent:.2f}" if lv.data_percent is not None else ""
        created = lv.created.strftime("%Y-%m-%d %H:%M") if lv.created else ""
        rows.append((lv.path, lv.attr, human(lv.size), lv.origin, fill, created))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def cmd_list(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        state = facts_of(host).lvm
        print(lv_table(ops.list_guest_lvs(host.site, state)))
        print(f"\nVG {state.vg.name}: {human(state.vg.free)} free of {human(state.vg.size)}")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    size = parse_size(args.size)
    with host_of(args) as host:
        facts = facts_of(host)
        plan = ops.create(facts, args.name, size)
        return show_and_apply(host, plan, args, facts)


def cmd_rename(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        facts = facts_of(host)
        plan = ops.rename(facts, args.old, args.new)
        return show_and_apply(host, plan, args, facts)


def cmd_resize(args: argparse.Namespace) -> int:
    size = parse_size(args.size)
    with host_of(args) as host:
        facts = facts_of(host)
        plan = ops.resize(facts, args.name, size)
        return show_and_apply(host, plan, args, facts)


def cmd_snapshot(args: argparse.Namespace) -> int:
    size = parse_size(args.size) if args.size else None
    with host_of(args) as host:
        facts = facts_of(host)
        plan = ops.snapshot(facts, args.name, size)
        return show_and_apply(host, plan, args, facts)


def cmd_snapshots(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        print(lv_table(ops.snapshots(host.site, facts_of(host).lvm)))
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    by = parse_size(args.by) if args.by else None
    with host_of(args) as host:
        facts = facts_of(host)
        return show_and_apply(host, ops.extend_full_snapshots(facts, args.threshold, by), args, facts)


def cmd_merge(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        facts = facts_of(host)
        return show_and_apply(host, ops.merge(facts, args.snapshot, interval=args.interval), args, facts)


def cmd_remove(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        facts = facts_of(host)
        plan = ops.remove(facts, args.name)
        return show_and_apply(host, plan, args, facts)
