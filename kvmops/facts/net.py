"""The host's network facts, read through its runner (read-only commands) and parsed by
:mod:`kvmops.net`."""

from __future__ import annotations

from dataclasses import replace

from kvmops.errors import CommandFailed
from kvmops.net import iplink, nmcli
from kvmops.net.facts import MANAGED_TYPES, NetFacts
from kvmops.net.nmcli import Profile
from kvmops.runners.base import Runner


def read_net(runner: Runner) -> NetFacts:
    """Read the host's network facts through ``runner`` (read-only commands only)."""
    links = iplink.parse_links(runner.run(iplink.addresses_cmd()).stdout)
    vlans = iplink.parse_bridge_vlans(
        runner.run(iplink.bridge_vlans_cmd(), check=False).stdout
    )
    try:
        refs = nmcli.parse_list(runner.run(nmcli.list_cmd()).stdout)
    except CommandFailed as exc:
        hint = nmcli.explain(exc.stderr) or exc.stderr.strip()
        return NetFacts(links=links, port_vlans=vlans, nm_running=False, nm_error=hint)
    devices = nmcli.parse_devices(runner.run(nmcli.devices_cmd()).stdout)
    return NetFacts(_profiles(runner, refs), devices, links, vlans)


def _profiles(runner: Runner, refs: tuple[nmcli.ProfileRef, ...]) -> tuple[Profile, ...]:
    wanted = tuple(r.uuid for r in refs if r.type in MANAGED_TYPES)
    if not wanted:
        return ()
    details = nmcli.parse_details(runner.run(nmcli.details_cmd(wanted)).stdout)
    active = {r.uuid: r.device for r in refs}
    return tuple(replace(p, device=active.get(p.uuid, "")) for p in details)
