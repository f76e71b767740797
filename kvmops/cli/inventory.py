"""``kvmops inventory``: every guest with state, resources, disks, snapshots and VG space."""

from __future__ import annotations

import argparse

from kvmops.cli.common import command, facts_of, host_of
from kvmops.guests.inventory import inventory_of, render_table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command(sub, "inventory", "guests, their LVs and snapshots, VG free (one listing each)", cmd_inventory)


def cmd_inventory(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        print(render_table(inventory_of(facts_of(host))))
    return 0
