"""The manual's fleet page: the newest fleet inventory in the journal (``kvmops fleet
inventory`` leaves ``<journal>/<time>-fleet-inventory/fleet.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kvmops.cli.fleet import FLEET_KIND
from kvmops.fleet.room import Room, render


def newest(journal: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest fleet record of the journal and its data (None: there is none)."""
    found = sorted(journal.glob(f"*-{FLEET_KIND}/fleet.json")) if journal.is_dir() else []
    for path in reversed(found):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a record being written, or damaged: the one before it
        if data.get("kind") == FLEET_KIND:
            return path, data
    return None


def page(journal: Path) -> str:
    """The markdown of ``<!-- kvmops:fleet -->``."""
    got = newest(journal)
    if got is None:
        return ("!!! note \"No fleet inventory in the journal yet\"\n"
                "    Run `kvmops fleet inventory --fleet INVENTORY` (site files or an Ansible inventory); "
                "the next build of the manual shows it here.")
    path, data = got
    rooms = [Room(**{**h, "filling": tuple(map(tuple, h.get("filling", ()))),
                     "bridges": tuple(h["bridges"]) if h.get("bridges") is not None else None,
                     "networks": tuple(map(tuple, h.get("networks", ())))}) for h in data["hosts"]]
    down = [r.name for r in rooms if not r.reachable]
    note = f"\n\n**Not read:** {', '.join(down)} (see the table)." if down else ""
    return (f"Taken {data['taken']} (record `{path.parent.name}`), {len(rooms)} host(s).{note}\n\n"
            "```text\n" + render(rooms) + "\n```")
