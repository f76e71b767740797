"""NetworkManager for real, inside a network namespace the test makes (own dbus-daemon, private
configuration). Bridges are created and fixed THROUGH kvmops (a runner that prefixes
``ip netns exec NS``); the real interface and NetworkManager's profile are asserted.

The host's facts are read as on a real host: LVM's report of the site's VG (on a scratch PV,
fixture ``site_vg``), the guests from libvirt (the test driver, a node file per test), and
the network facts from the namespace.

This kernel has no 802.1Q: the VLAN profile is added but cannot come up here; the VLAN part
runs in the lab tier (tests/lab/test_net_vlan_lab.py).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kvmops.errors import SafetyError
from kvmops.executor import Executor, StepFailed, confirmed
from kvmops.facts import read_facts
from kvmops.host import Host
from kvmops.hostfacts import FactsUnavailable, HostFacts
from kvmops.net import address, drift, ops
from kvmops.procedures import host_network
from kvmops.runners import PlanRunner, faults
from kvmops.site import load_site
from tests.conftest import need_tools
from tests.support.netns import NetnsNM, nm_in_netns
from tests.support.run import run_plan

pytestmark = pytest.mark.integration
SITE = load_site()
NODE = """<node>
  <cpu><mhz>2000</mhz><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads></cpu>
  <memory>4194304</memory>
{domains}
</node>
"""
DOMAIN = """  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>{name}</name><memory unit='KiB'>524288</memory><vcpu>1</vcpu><os><type>hvm</type></os>
    <devices><interface type='bridge'><source bridge='{bridge}'/></interface></devices>
    <test:runstate>5</test:runstate>
  </domain>"""


@pytest.fixture
def nm(tmp_path: Path) -> Iterator[NetnsNM]:
    need_tools("ip", "dbus-daemon", "NetworkManager", "nmcli")
    with nm_in_netns(tmp_path) as handle:
        print(f"NetworkManager in netns {handle.netns}: setup seconds {handle.timings}")
        yield handle


def node(tmp: Path, **guests: str) -> str:
    """A libvirt test-driver node with shut-off guests ``name=bridge``; its ``test:///`` URI."""
    path = tmp / "node.xml"
    path.write_text(NODE.format(domains="\n".join(DOMAIN.format(name=n, bridge=b) for n, b in guests.items())))
    return f"test://{path}"


@pytest.fixture
def host(nm: NetnsNM, site_vg: str, tmp_path: Path) -> Iterator[Host]:
    h = Host(SITE, nm.runner(), node(tmp_path))
    yield h
    h.close()


def facts(host: Host) -> HostFacts:
    """The host's facts with the network facts: read once per decision."""
    return read_facts(host, host_network.wanted())


def link(nm: NetnsNM, name: str) -> dict[str, Any]:
    (data,) = json.loads(nm.ns("ip", "-j", "-d", "address", "show", "dev", name).stdout)
    assert isinstance(data, dict)
    return data


def props(nm: NetnsNM, profile: str, fields: str) -> dict[str, str]:
    out = nm.nmcli("-t", "-f", fields, "connection", "show", "id", profile).stdout
    return dict(line.split(":", 1) for line in out.splitlines())


def test_guest_bridge_created_through_kvmops(nm: NetnsNM, host: Host) -> None:
    plan = ops.ensure_network(facts(host), 2368)
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

    again = ops.ensure_network(facts(host), 2368)
    assert again.empty, again.render()  # converged: every step is a no-op
    report = drift.drift_report(SITE, facts(host).net)
    (status,) = [s for s in report.statuses if s.bridge == "virbr1.2368"]
    assert [f.problem for f in status.findings] == [
        "no VLAN interface is a port of virbr1.2368 in the kernel"]  # no 802.1Q here


def test_plan_mode_changes_nothing(nm: NetnsNM, site_vg: str, tmp_path: Path) -> None:
    host = Host(SITE, PlanRunner(nm.runner()), node(tmp_path))
    plan = ops.ensure_network(facts(host), 2368)
    run_plan(host, plan, progress=lambda _: None)
    host.close()
    assert nm.ns("ip", "link", "show", "virbr1.2368", check=False).returncode != 0
    assert nm.nmcli("-t", "-f", "NAME", "connection", "show").stdout == ""


def test_drifted_bridge_is_fixed_live_and_guests_stay_attached(nm: NetnsNM, host: Host) -> None:
    nm.nmcli("connection", "add", "type", "bridge", "ifname", "virbr1.68", "con-name", "virbr1.68")
    nm.nmcli("connection", "up", "id", "virbr1.68")
    nm.ns("ip", "tuntap", "add", "dev", "vnet0", "mode", "tap")
    nm.ns("ip", "link", "set", "vnet0", "master", "virbr1.68", "up")
    assert link(nm, "virbr1.68")["linkinfo"]["info_data"]["ageing_time"] == 30000

    plan = ops.ensure_bridge(facts(host), 68, stp=False)
    assert [s.cmd.argv[:3] for s in plan.steps if s.cmd] == [
        ("nmcli", "connection", "modify"), ("nmcli", "device", "reapply")]
    run_plan(host, plan, progress=lambda _: None)

    br = link(nm, "virbr1.68")
    assert br["linkinfo"]["info_data"]["ageing_time"] == 0
    assert br["linkinfo"]["info_data"]["stp_state"] == 0
    assert props(nm, "virbr1.68", "ipv4.method,ipv6.method") == {
        "ipv4.method": "disabled", "ipv6.method": "disabled"}
    assert link(nm, "vnet0").get("master") == "virbr1.68"  # the guest's port stayed attached
    assert ops.ensure_bridge(facts(host), 68, stp=False).empty


def test_remove_refused_with_a_guest_then_done_with_confirm(nm: NetnsNM, host: Host) -> None:
    run_plan(host, ops.ensure_network(facts(host), 2368), progress=lambda _: None)
    nm.ns("ip", "tuntap", "add", "dev", "vnet7", "mode", "tap")
    nm.ns("ip", "link", "set", "vnet7", "master", "virbr1.2368")
    with pytest.raises(SafetyError, match="vnet7"):
        ops.remove_bridge(facts(host), "virbr1.2368")

    nm.ns("ip", "link", "delete", "vnet7")
    plan = ops.remove_bridge(facts(host), "virbr1.2368")
    with pytest.raises(Exception, match="confirm='virbr1.2368'"):
        run_plan(host, plan, progress=lambda _: None)
    assert nm.ns("ip", "link", "show", "virbr1.2368", check=False).returncode == 0  # still there
    run_plan(host, plan, "virbr1.2368", progress=lambda _: None)
    assert nm.ns("ip", "link", "show", "virbr1.2368", check=False).returncode != 0
    assert nm.nmcli("-t", "-f", "NAME", "connection", "show").stdout == ""
    assert list(nm.keyfiles.iterdir()) == []


def test_remove_refused_while_a_shut_off_guest_names_the_bridge(nm: NetnsNM, site_vg: str, tmp_path: Path) -> None:
    host = Host(SITE, nm.runner(), node(tmp_path, web1="virbr1.2368"))
    try:
        run_plan(host, ops.ensure_network(facts(host), 2368))
        with pytest.raises(SafetyError, match=r"guest web1 \(shut off\) is attached to it"):
            ops.remove_bridge(facts(host), "virbr1.2368")  # no tap: the guest does not run
        assert nm.ns("ip", "link", "show", "virbr1.2368", check=False).returncode == 0
    finally:
        host.close()


def test_libvirt_unreachable_refuses_and_nothing_is_removed(nm: NetnsNM, site_vg: str, tmp_path: Path) -> None:
    down = Host(SITE, nm.runner(), f"qemu+unix:///system?socket={tmp_path}/no-libvirtd.sock")
    up = Host(SITE, nm.runner(), node(tmp_path))
    try:
        run_plan(up, ops.ensure_network(facts(up), 2368))
        with pytest.raises(FactsUnavailable, match="libvirt on .* does not answer"):
            ops.remove_bridge(facts(down), "virbr1.2368")  # never "taps only"
        assert nm.ns("ip", "link", "show", "virbr1.2368", check=False).returncode == 0
    finally:
        down.close()
        up.close()


def test_host_network_procedure_applies_and_verifies_in_the_kernel(nm: NetnsNM, host: Host) -> None:
    proc = host_network.procedure(facts(host), 2368, host_network.stp_choice("off"))
    Executor(host, lambda _: None).run_procedure(proc)
    verdict = host_network.verify(facts(host), 2368)
    failed = [ln for ln in verdict.lines if ln.startswith("FAILED")]
    # all holds but the VLAN port: this kernel has no 802.1Q (the lab tier checks that part)
    assert failed == ["FAILED: ens802f1.2368 (VLAN 2368 on ens802f1) is a port of virbr1.2368 in the kernel"]
    assert "ok: virbr1.2368 has ageing time 0 in the kernel" in verdict.lines
    assert host_network.procedure(facts(host), 2368).preview[0].empty  # converged


def _clean(nm: NetnsNM) -> None:
    for uuid in nm.nmcli("-t", "-f", "UUID", "connection", "show").stdout.split():
        nm.nmcli("connection", "delete", "uuid", uuid)


@pytest.mark.parametrize("when", ["before", "after"])
def test_host_network_fails_cleanly_at_each_change_and_converges(
        nm: NetnsNM, host: Host, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """Each change of the procedure fails in turn (before it ran, or after); running it again
    from fresh facts completes the network: no doubled profiles, the guide's settings."""
    changes = [s for s in host_network.procedure(facts(host), 2368).preview[0].steps if s.mutates]
    assert len(changes) == 3  # add bridge, activate it, add VLAN port (no uplink here: not activated)
    for n in range(1, len(changes) + 1):
        _clean(nm)
        monkeypatch.setenv(faults.FAULT_AT_ENV, str(n))
        monkeypatch.setenv(faults.FAULT_WHEN_ENV, when)
        faults.reset()
        with pytest.raises(StepFailed, match="injected fault"):
            Executor(host, lambda _: None).run_procedure(host_network.procedure(facts(host), 2368))
        monkeypatch.delenv(faults.FAULT_AT_ENV)
        again = host_network.procedure(facts(host), 2368)
        Executor(host, lambda _: None).run_procedure(again, confirmed())
        assert host_network.procedure(facts(host), 2368).preview[0].empty, f"fault at {n} {when}"
        names = nm.nmcli("-t", "-f", "NAME", "connection", "show").stdout.split()
        assert sorted(names) == ["ens802f1.2368", "virbr1.2368"], names
        assert link(nm, "virbr1.2368")["linkinfo"]["info_data"]["ageing_time"] == 0


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


def test_a_nic_bound_by_mac_without_the_default_route(nm: NetnsNM) -> None:
    """Issue 24: the second NIC's profile, bound by its MAC, no gateway (never-default), no DNS:
    what NetworkManager writes for the guest-side command is kvmops' keyfile, and it loads it so."""
    a = dataclasses.replace(address.static_address(SITE, "test1", 223, "132.230.223.200", mac="52:54:00:ab:cd:ef",
                                                   device="eth1"), nic=1, default_route=False, dns=())
    nm.nmcli("connection", "add", "type", "ethernet", "con-name", "eth1", "ifname", "eth1")
    nm.nmcli(*address.nmcli_modify_argv(a)[1:])
    written = (nm.keyfiles / "eth1.nmconnection").read_text()
    body = [ln for ln in written.splitlines() if not ln.startswith("uuid=")]
    assert body == [ln for ln in address.nm_keyfile(a).splitlines() if not ln.startswith("uuid=")]
    got = props(nm, "eth1", "connection.interface-name,802-3-ethernet.mac-address,ipv4.method,ipv4.addresses,"
                "ipv4.gateway,ipv4.never-default,ipv4.dns")
    assert got == {"connection.interface-name": "", "802-3-ethernet.mac-address": "52:54:00:AB:CD:EF",
                   "ipv4.method": "manual", "ipv4.addresses": "132.230.223.200/24", "ipv4.gateway": "",
                   "ipv4.never-default": "yes", "ipv4.dns": ""}
