"""NetworkManager for real, inside a network namespace the test makes (own dbus-daemon, private
configuration). Bridges are created and fixed THROUGH kvmops (a runner that prefixes
``ip netns exec NS``); the real interface and NetworkManager's profile are asserted.

This kernel has no 802.1Q: the VLAN profile is added but cannot come up here; the VLAN part
runs in the lab tier (tests/lab/test_net_vlan_lab.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kvmops.errors import SafetyError
from kvmops.host import Host
from kvmops.net import address, drift, ops
from kvmops.net.facts import read_facts
from kvmops.runners import PlanRunner
from kvmops.site import load_site
from tests.conftest import need_tools
from tests.support.netns import NetnsNM, nm_in_netns
from tests.support.run import run_plan

pytestmark = pytest.mark.integration
SITE = load_site()


@pytest.fixture
def nm(tmp_path: Path) -> Iterator[NetnsNM]:
    need_tools("ip", "dbus-daemon", "NetworkManager", "nmcli")
    with nm_in_netns(tmp_path) as handle:
        print(f"NetworkManager in netns {handle.netns}: setup seconds {handle.timings}")
        yield handle


@pytest.fixture
def host(nm: NetnsNM) -> Host:
    return Host(SITE, nm.runner(), "test:///default")


def link(nm: NetnsNM, name: str) -> dict[str, Any]:
    (data,) = json.loads(nm.ns("ip", "-j", "-d", "address", "show", "dev", name).stdout)
    assert isinstance(data, dict)
    return data


def props(nm: NetnsNM, profile: str, fields: str) -> dict[str, str]:
    out = nm.nmcli("-t", "-f", fields, "connection", "show", "id", profile).stdout
    return dict(line.split(":", 1) for line in out.splitlines())


def test_guest_bridge_created_through_kvmops(nm: NetnsNM, host: Host) -> None:
    plan = ops.ensure_network(SITE, read_facts(host.runner), 2368)
    said: list[str] = []
    run_plan(host, plan, progress=said.append)

    br = link(nm, "virbr1.2368")
    assert br["linkinfo"]["info_kind"] == "bridge"
    assert br["linkinfo"]["info_data"]["ageing_time"] == 0
    assert br["linkinfo"]["info_data"]["stp_state"] == 0
    assert br.get("addr_info", []) == []  # no IPv4, no IPv6 link-local either
    assert props(nm, "virbr1.2368", "ipv4.method,ipv6.method,bridge.ageing-time,bridge.stp") == {
        "ipv4.method": "disabled", "ipv6.method": "disabled", "bridge.ageing-time": "0", "bridge.stp": "no"}
    assert props(nm, "ens802f1.2368", "connection.master,connection.slave-type,vlan.id,vlan.parent") == {
        "connection.master": "virbr1.2368", "connection.slave-type": "bridge", "vlan.id": "2368",
        "vlan.parent": "ens802f1"}
    keyfile = (nm.keyfiles / "virbr1.2368.nmconnection").read_text()
    assert "[ipv4]\nmethod=disabled" in keyfile and "ageing-time=0" in keyfile
    assert any("virbr1.2368: ageing time 0, no address, STP off" in s for s in said)

    again = ops.ensure_network(SITE, read_facts(host.runner), 2368)
    assert again.empty, again.render()  # converged: every step is a no-op
    report = drift.drift_report(SITE, read_facts(host.runner))
    (status,) = [s for s in report.statuses if s.bridge == "virbr1.2368"]
    assert [f.problem for f in status.findings] == [
        "no VLAN interface is a port of virbr1.2368 in the kernel"]  # no 802.1Q here


def test_plan_mode_changes_nothing(nm: NetnsNM) -> None:
    host = Host(SITE, PlanRunner(nm.runner()), "test:///default")
    plan = ops.ensure_network(SITE, read_facts(host.runner), 2368)
    run_plan(host, plan, progress=lambda _: None)
    assert nm.ns("ip", "link", "show", "virbr1.2368", check=False).returncode != 0
    assert nm.nmcli("-t", "-f", "NAME", "connection", "show").stdout == ""


def test_drifted_bridge_is_fixed_live_and_guests_stay_attached(nm: NetnsNM, host: Host) -> None:
    nm.nmcli("connection", "add", "type", "bridge", "ifname", "virbr1.68", "con-name", "virbr1.68")
    nm.nmcli("connection", "up", "id", "virbr1.68")
    nm.ns("ip", "tuntap", "add", "dev", "vnet0", "mode", "tap")
    nm.ns("ip", "link", "set", "vnet0", "master", "virbr1.68", "up")
    assert link(nm, "virbr1.68")["linkinfo"]["info_data"]["ageing_time"] == 30000

    plan = ops.ensure_bridge(SITE, read_facts(host.runner), 68, stp=False)
    assert [s.cmd.argv[:3] for s in plan.steps if s.cmd] == [
        ("nmcli", "connection", "modify"), ("nmcli", "device", "reapply")]
    run_plan(host, plan, progress=lambda _: None)

    br = link(nm, "virbr1.68")
    assert br["linkinfo"]["info_data"]["ageing_time"] == 0
    assert br["linkinfo"]["info_data"]["stp_state"] == 0
    assert props(nm, "virbr1.68", "ipv4.method,ipv6.method") == {
        "ipv4.method": "disabled", "ipv6.method": "disabled"}
    assert link(nm, "vnet0").get("master") == "virbr1.68"  # the guest's port stayed attached
    assert ops.ensure_bridge(SITE, read_facts(host.runner), 68, stp=False).empty


def test_remove_refused_with_a_guest_then_done_with_confirm(nm: NetnsNM, host: Host) -> None:
    run_plan(host, ops.ensure_network(SITE, read_facts(host.runner), 2368), progress=lambda _: None)
    nm.ns("ip", "tuntap", "add", "dev", "vnet7", "mode", "tap")
    nm.ns("ip", "link", "set", "vnet7", "master", "virbr1.2368")
    with pytest.raises(SafetyError, match="vnet7"):
        ops.remove_bridge(SITE, read_facts(host.runner), "virbr1.2368")

    nm.ns("ip", "link", "delete", "vnet7")
    plan = ops.remove_bridge(SITE, read_facts(host.runner), "virbr1.2368")
    with pytest.raises(Exception, match="confirm='virbr1.2368'"):
        run_plan(host, plan, progress=lambda _: None)
    assert nm.ns("ip", "link", "show", "virbr1.2368", check=False).returncode == 0  # still there
    run_plan(host, plan, "virbr1.2368", progress=lambda _: None)
    assert nm.ns("ip", "link", "show", "virbr1.2368", check=False).returncode != 0
    assert nm.nmcli("-t", "-f", "NAME", "connection", "show").stdout == ""
    assert list(nm.keyfiles.iterdir()) == []


def test_networkmanager_reads_the_keyfile_kvmops_writes(nm: NetnsNM) -> None:
    a = address.static_address(SITE, "test1", 2368, "10.5.68.237")
    path = nm.keyfiles / "eth0.nmconnection"
    path.write_text(address.nm_keyfile(a))
    path.chmod(0o600)  # NM ignores keyfiles others can read
    nm.nmcli("connection", "load", str(path))
    got = props(nm, "eth0", "connection.uuid,connection.interface-name,ipv4.method,ipv4.addresses,"
                "ipv4.gateway,ipv4.dns,ipv4.may-fail")
    assert got == {"connection.uuid": address.profile_uuid(a), "connection.interface-name": "eth0",
                   "ipv4.method": "manual", "ipv4.addresses": "10.5.68.237/24",
                   "ipv4.gateway": "10.5.68.254", "ipv4.dns": "132.230.200.200", "ipv4.may-fail": "no"}


def test_the_guides_guest_command_gives_the_same_profile(nm: NetnsNM) -> None:
    a = address.static_address(SITE, "test1", 2368, "10.5.68.237")
    nm.nmcli("connection", "add", "type", "ethernet", "con-name", "eth0", "ifname", "eth0")
    argv = address.nmcli_modify_argv(a)
    nm.nmcli(*argv[1:])
    written = (nm.keyfiles / "eth0.nmconnection").read_text()
    ours = address.nm_keyfile(a)
    body = [ln for ln in written.splitlines() if not ln.startswith("uuid=")]
    assert body == [ln for ln in ours.splitlines() if not ln.startswith("uuid=")]
