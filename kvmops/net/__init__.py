"""Guest networks (guide 2.2 and 3.3.3): VLAN bridges through NetworkManager, static addresses.

Layers:

- parsers and fact commands: :mod:`kvmops.net.nmcli` (``nmcli -t``), :mod:`kvmops.net.iplink`
  (``ip -j -d address show``, ``bridge -j vlan show``), gathered by
  :func:`kvmops.net.facts.read_facts`;
- pure checks and builders: :mod:`kvmops.net.validate`, :mod:`kvmops.net.drift`
  (report against the site's networks), :mod:`kvmops.net.commands` (nmcli argv),
  :mod:`kvmops.net.address` (static address, guest nmcli argv, keyfile, ifcfg);
- operations over the host's facts (:class:`kvmops.facts.HostFacts`, read with
  ``Wanted(net=True)``) returning plans: :mod:`kvmops.net.ops` (bridge + VLAN port, removal,
  guarded by :mod:`kvmops.net.attached`), :mod:`kvmops.net.registry`
  (``<xml_dir>/addresses.toml``, a file fact).

The runbook and CLI glue lives in :mod:`kvmops.procedures.host_network` and
:mod:`kvmops.procedures.net_address`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvmops.lazy import exports

if TYPE_CHECKING:
    from kvmops.net.address import StaticAddress, dhcp_reminder, ifcfg, nm_keyfile, nmcli_modify_argv, static_address
    from kvmops.net.drift import DriftReport, drift_report
    from kvmops.net.facts import NetFacts, read_facts
    from kvmops.net.ops import ensure_bridge, ensure_network, ensure_vlan_port, remove_bridge

# name -> submodule, imported on first use: importing one submodule loads no other
_WHERE = {
    "DriftReport": "drift",
    "NetFacts": "facts",
    "StaticAddress": "address",
    "dhcp_reminder": "address",
    "drift_report": "drift",
    "ensure_bridge": "ops",
    "ensure_network": "ops",
    "ensure_vlan_port": "ops",
    "ifcfg": "address",
    "nm_keyfile": "address",
    "nmcli_modify_argv": "address",
    "read_facts": "facts",
    "remove_bridge": "ops",
    "static_address": "address",
}
__all__ = [
    "DriftReport",
    "NetFacts",
    "StaticAddress",
    "dhcp_reminder",
    "drift_report",
    "ensure_bridge",
    "ensure_network",
    "ensure_vlan_port",
    "ifcfg",
    "nm_keyfile",
    "nmcli_modify_argv",
    "read_facts",
    "remove_bridge",
    "static_address",
]
__getattr__ = exports(__name__, _WHERE)
