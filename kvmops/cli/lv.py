"""``kvmops lv``: the guide's LVM tasks (4.2) as plans, executed only with --apply."""

from __future__ import annotations

import argparse

from kvmops.cli.common import command, facts_of, host_of, option, plan_and_apply
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
    name = option("name")
    command(cmds, "list", "guest LVs of the site's VG (host LVs are never shown)", cmd_list)
    command(cmds, "create", "lvcreate --name LV --size SIZE VG", cmd_create,
            option("name", help="LV name, e.g. vmtest1 (must start with the site's prefix)"),
            option("--size", required=True, help="e.g. 10g (base-2: b s k m g t, any case)"), effect="changes")
    command(cmds, "rename", "lvrename VG OLD NEW", cmd_rename, option("old"), option("new"), effect="changes")
    command(cmds, "resize", "lvresize --size SIZE VG/LV (shrinking needs --confirm)", cmd_resize, name,
            option("--size", required=True), effect="destroys")
    command(cmds, "snapshot", "lvcreate --snapshot --name LV-YYYYMMDDTHHMMZ", cmd_snapshot, name,
            option("--size", help="snapshot size (default: the site's snapshot_size)"), effect="changes")
    command(cmds, "snapshots", "every guest snapshot with how full it is (percent)", cmd_snapshots)
    command(cmds, "extend", "grow snapshots above a fill threshold", cmd_extend,
            option("--threshold", type=percent, help="fill percent, above 0 and at most 100 (default: the site's)"),
            option("--by", help="how much to add (default: the site's)"), effect="changes")
    command(cmds, "merge", "lvconvert --mergesnapshot VG/SNAP (restores the origin)", cmd_merge, option("snapshot"),
            option("--interval", type=interval, default=10, help="progress interval in seconds (1-3600)"),
            effect="destroys")
    command(cmds, "remove", "lvremove VG/LV (needs --confirm VG/LV)", cmd_remove, name, effect="destroys")


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
    return plan_and_apply(args, lambda facts: ops.create(facts, args.name, size))


def cmd_rename(args: argparse.Namespace) -> int:
    return plan_and_apply(args, lambda facts: ops.rename(facts, args.old, args.new))


def cmd_resize(args: argparse.Namespace) -> int:
    size = parse_size(args.size)
    return plan_and_apply(args, lambda facts: ops.resize(facts, args.name, size))


def cmd_snapshot(args: argparse.Namespace) -> int:
    size = parse_size(args.size) if args.size else None
    return plan_and_apply(args, lambda facts: ops.snapshot(facts, args.name, size))


def cmd_snapshots(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        print(lv_table(ops.snapshots(host.site, facts_of(host).lvm)))
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    by = parse_size(args.by) if args.by else None
    return plan_and_apply(args, lambda facts: ops.extend_full_snapshots(facts, args.threshold, by))


def cmd_merge(args: argparse.Namespace) -> int:
    return plan_and_apply(args, lambda facts: ops.merge(facts, args.snapshot, interval=args.interval))


def cmd_remove(args: argparse.Namespace) -> int:
    return plan_and_apply(args, lambda facts: ops.remove(facts, args.name))
