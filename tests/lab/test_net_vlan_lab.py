"""The VLAN half of guide 2.2, in the lab VM (it has 802.1Q; the CI kernel has not).

Opt-in like the whole lab tier (``KVMOPS_LAB=1``). Uses ``lab_host`` of ``tests/lab/conftest.py``: a
:class:`kvmops.host.Host` that applies, connected over SSH to the running lab VM, whose site
is the lab site (uplink ``ens802f1``, VLANs 2368, 2367, 223). VLAN 223 is used here so the
nested-guest tests keep their ``virbr1.2368``; everything made is removed afterwards.

``KVMOPS_CAPTURE_DIR=DIR`` saves the lab's real ``ip -j -d address show`` and
``bridge -j vlan show`` outputs there, for parser fixtures in ``tests/fixtures/net``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.facts import read_facts
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.net import commands, drift, iplink, ops
from kvmops.procedures import host_network
from tests.support.run import run_plan

pytestmark = pytest.mark.lab
VLAN = 223


def facts(host: Host) -> HostFacts:
    return read_facts(host, host_network.wanted())


def _remove(host: Host, bridge: str) -> None:
    plan = ops.remove_bridge(facts(host), bridge)
    run_plan(host, plan, bridge, progress=print)


@pytest.fixture
def host(lab_host: Host) -> Iterator[Host]:
    bridge = lab_host.site.network(VLAN).bridge
    _remove(lab_host, bridge)  # a leftover of an interrupted run
    try:
        yield lab_host
    finally:
        _remove(lab_host, bridge)


def _capture(host: Host, name: str, text: str) -> None:
    folder = os.environ.get("KVMOPS_CAPTURE_DIR")
    if folder:
        Path(folder, name).write_text(text)


def test_bridge_with_vlan_port_on_the_uplink(host: Host) -> None:
    site = host.site
    net = site.network(VLAN)
    port_name = f"{site.uplink}.{VLAN}"
    plan = ops.ensure_network(facts(host), VLAN)
    assert not plan.empty
    run_plan(host, plan, progress=print)

    raw = host.runner.run(iplink.addresses_cmd()).stdout
    _capture(host, "lab-ip-addr-vlan.out", raw)
    _capture(host, "lab-bridge-vlan.out", host.runner.run(iplink.bridge_vlans_cmd(), check=False).stdout)
    links = {lk.name: lk for lk in iplink.parse_links(raw)}
    bridge, port = links[net.bridge], links[port_name]
    assert bridge.is_bridge and bridge.ageing_cs == 0 and bridge.stp_state == 0
    assert bridge.addresses == ()
    assert port.is_vlan and port.vlan_id == VLAN and port.vlan_protocol == "802.1Q"
    assert port.parent == site.uplink and port.master == net.bridge
    by_name = {d["ifname"]: d for d in json.loads(raw)}
    assert by_name[port_name]["linkinfo"]["info_data"]["id"] == VLAN  # parser agrees with raw

    now = facts(host)
    (status,) = [s for s in drift.drift_report(site, now.net).statuses if s.bridge == net.bridge]
    assert status.findings == (), status.findings
    assert ops.ensure_network(now, VLAN).empty  # converged
    verdict = host_network.verify(now, VLAN)  # the runbook's verification: every check holds here
    assert verdict.ok, verdict.render()


def test_wrong_vlan_id_is_fixed(host: Host) -> None:
    site = host.site
    net = site.network(VLAN)
    port_name = f"{site.uplink}.{VLAN}"
    run_plan(host, ops.ensure_network(facts(host), VLAN), progress=print)
    prof = facts(host).net.port_profiles(net.bridge)[0]
    host.runner.run(commands.modify(prof.uuid, ("vlan.id", "4000")))

    drifted = facts(host)
    assert any("has id 4000" in f.problem for f in drift.check_network(site, drifted.net, net).findings)
    run_plan(host, ops.ensure_network(drifted, VLAN), progress=print)
    port = facts(host).net.link(port_name)
    assert port is not None and port.vlan_id == VLAN and port.master == net.bridge
