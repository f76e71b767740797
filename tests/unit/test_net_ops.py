"""Bridge plans from real captured facts: commands expected, no-ops, refusals."""

from __future__ import annotations

import dataclasses

import pytest

from kvmops.errors import ConfirmationRequired, InvalidInput, NotFound, SafetyError
from kvmops.executor import confirmed, require_confirmed
from kvmops.facts.net import read_net as read_facts
from kvmops.guests.domain import DomainInfo
from kvmops.host import Host
from kvmops.hostfacts import FactsIncomplete, HostFacts
from kvmops.net import commands as c
from kvmops.net import ops, validate
from kvmops.net.facts import NetFacts
from kvmops.net.iplink import Link
from kvmops.plan import Plan, Wait
from kvmops.runners import PlanRunner
from kvmops.site import Site, load_site
from tests.support.facts import domain, host_facts
from tests.support.netns import FixtureRunner
from tests.support.run import run_plan
from tests.unit.test_guest_testbed import lvm_state

BRIDGE_2368 = "065e2c64-580c-4cc9-84ad-71db60000140"
BRIDGE_68 = "259a8068-19e2-4b2b-aa6b-9785898466a4"
PORT_2368 = "c9b7e8db-ca49-46e4-b064-67a519491f81"
UPLINK = Link("ens802f1", 30, up=True)


@pytest.fixture
def site() -> Site:
    return load_site()


@pytest.fixture
def facts() -> NetFacts:
    return read_facts(FixtureRunner())


def hf(net: NetFacts, *domains: DomainInfo, site: Site | None = None) -> HostFacts:
    """The host's facts with these network facts and guests (LVM from a captured report)."""
    return host_facts(lvm_state(), site=site, domains=domains, net=net)


def commands(plan: Plan) -> list[str]:
    return [s.cmd.display() for s in plan.steps if s.cmd is not None]


def with_links(facts: NetFacts, *extra: Link, drop: tuple[str, ...] = ()) -> NetFacts:
    links = tuple(lk for lk in facts.links if lk.name not in drop) + extra
    return dataclasses.replace(facts, links=links)


def test_builders_are_the_guides_settings_in_nm_142_words() -> None:
    assert c.add_bridge("virbr1.2368", stp=False).argv == (
        "nmcli", "connection", "add", "type", "bridge", "ifname", "virbr1.2368", "con-name",
        "virbr1.2368", "bridge.ageing-time", "0", "bridge.stp", "no", "ipv4.method", "disabled",
        "ipv6.method", "disabled")
    cmd = c.add_vlan_port("ens802f1.2368", "ens802f1", 2368, "virbr1.2368")
    assert cmd.argv == ("nmcli", "connection", "add", "type", "vlan", "ifname", "ens802f1.2368",
                        "con-name", "ens802f1.2368", "dev", "ens802f1", "id", "2368",
                        "master", "virbr1.2368", "slave-type", "bridge")
    assert cmd.mutates and "controller" not in cmd.argv and "port-type" not in cmd.argv
    with pytest.raises(ValueError, match="pairs"):
        c.modify("u", ("bridge.stp",))


def test_new_network_adds_bridge_port_and_checks(site: Site, facts: NetFacts) -> None:
    plan = ops.ensure_network(hf(with_links(facts, UPLINK)), 223)
    assert commands(plan) == [
        "nmcli connection add type bridge ifname virbr1.223 con-name virbr1.223 bridge.ageing-time 0 "
        "bridge.stp no ipv4.method disabled ipv6.method disabled",
        "nmcli connection up id virbr1.223",
        "nmcli connection add type vlan ifname ens802f1.223 con-name ens802f1.223 dev ens802f1 id 223 "
        "master virbr1.223 slave-type bridge",
        "nmcli connection up id ens802f1.223",
    ]
    assert isinstance(plan.steps[-1].effect, Wait)  # the check after the change
    assert not plan.targets  # creating is not destructive
    assert ops.AGEING_NOTE in plan.notes  # ageing 0 floods like a hub: the plan says so


def test_stp_on_when_asked(site: Site, facts: NetFacts) -> None:
    plan = ops.ensure_bridge(hf(facts), 223, stp=True)
    assert "bridge.stp yes" in commands(plan)[0]


def test_correct_bridge_is_a_noop_and_port_waits_for_uplink(site: Site, facts: NetFacts) -> None:
    plan = ops.ensure_network(hf(facts), 2368)
    assert plan.empty, plan.render()
    assert any("uplink ens802f1 does not exist" in n for n in plan.notes)


def test_inactive_port_is_activated_when_the_uplink_exists(site: Site, facts: NetFacts) -> None:
    plan = ops.ensure_network(hf(with_links(facts, UPLINK)), 2368)
    assert commands(plan) == [f"nmcli connection up uuid {PORT_2368}"]


def test_wrong_settings_are_modified_and_reapplied_not_reactivated(site: Site, facts: NetFacts) -> None:
    plan = ops.ensure_bridge(hf(facts), 68)
    assert commands(plan) == [
        f"nmcli connection modify uuid {BRIDGE_68} bridge.ageing-time 0 ipv4.method disabled "
        "ipv6.method disabled",
        "nmcli device reapply virbr1.68",
    ]
    assert not any("connection up" in cmd for cmd in commands(plan))


def test_explicit_stp_off_is_added_to_the_fix(site: Site, facts: NetFacts) -> None:
    assert "bridge.stp no" in commands(ops.ensure_bridge(hf(facts), 68, stp=False))[0]


def test_existing_wrong_vlan_profile_is_fixed(site: Site, facts: NetFacts) -> None:
    wrong = dataclasses.replace(facts.port_profiles("virbr1.2368")[0], vlan_id=2367)
    profiles = tuple(wrong if p.uuid == PORT_2368 else p for p in facts.profiles)
    plan = ops.ensure_vlan_port(hf(with_links(dataclasses.replace(facts, profiles=profiles), UPLINK)), 2368)
    assert commands(plan) == [
        f"nmcli connection modify uuid {PORT_2368} connection.interface-name ens802f1.2368 "
        "vlan.parent ens802f1 vlan.id 2368",
        f"nmcli connection up uuid {PORT_2368}",
    ]


def test_inactive_bridge_profile_is_brought_up(site: Site, facts: NetFacts) -> None:
    profiles = tuple(dataclasses.replace(p, device="") for p in facts.profiles)
    no_guest = tuple(lk for lk in facts.links if lk.kind != "tun")
    plan = ops.ensure_bridge(hf(dataclasses.replace(facts, profiles=profiles, links=no_guest)), 2368)
    assert commands(plan) == [f"nmcli connection up uuid {BRIDGE_2368}"]


def test_an_inactive_profile_is_not_activated_over_a_guests_port(site: Site, facts: NetFacts) -> None:
    """Found by tests/unit/test_safety_properties.py: activating would detach vnet0 (its guest)."""
    profiles = tuple(dataclasses.replace(p, device="") for p in facts.profiles)
    with pytest.raises(SafetyError, match="has the ports vnet0: activating the profile"):
        ops.ensure_bridge(hf(dataclasses.replace(facts, profiles=profiles)), 2368)


def test_bridge_made_by_another_tool_is_refused(site: Site, facts: NetFacts) -> None:
    other = Link("virbr1.223", 40, kind="bridge", ageing_cs=30000)
    with pytest.raises(ops.NotManaged, match="has no NetworkManager profile"):
        ops.ensure_bridge(hf(with_links(facts, other)), 223)


def test_without_networkmanager_nothing_is_planned(site: Site) -> None:
    with pytest.raises(ops.NotManaged, match="NetworkManager is not reachable"):
        ops.ensure_network(hf(NetFacts(nm_running=False, nm_error="not running")), 2368)


@pytest.mark.parametrize(("vlan", "error", "match"), [
    (0, InvalidInput, "outside 1-4094"),
    (4095, InvalidInput, "outside 1-4094"),
    ("23a", InvalidInput, "not a number"),
    (100, NotFound, r"VLAN 100 is not a network of site .* \(known: 223, 2367, 2368, 68\)"),
])
def test_bad_vlan_is_refused_before_any_command(site: Site, facts: NetFacts, vlan: object,
                                                error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ops.ensure_network(hf(facts), vlan)  # type: ignore[arg-type]


def test_vlan_interface_name_over_15_characters(site: Site, facts: NetFacts) -> None:
    long_uplink = dataclasses.replace(site, uplink="enp129s0f1np1")
    with pytest.raises(InvalidInput, match=r"'enp129s0f1np1.2368' is 18 characters: Linux allows at most 15"):
        ops.ensure_network(hf(facts, site=long_uplink), 2368)
    assert validate.vlan_ifname("ens802f1", 2368) == "ens802f1.2368"


def test_bridge_name_over_15_characters() -> None:
    with pytest.raises(InvalidInput, match="16 characters: at most 15"):
        validate.bridge_name("virbr1.123456789")


def test_remove_is_refused_while_a_guest_tap_is_a_port(facts: NetFacts) -> None:
    with pytest.raises(SafetyError, match=r"guests are attached to virbr1.2368 \(a guest NIC \(vnet0\)"):
        ops.remove_bridge(hf(facts), "virbr1.2368")


@pytest.mark.parametrize("running", [True, False])
def test_remove_is_refused_for_a_bridge_any_defined_guest_names(facts: NetFacts, running: bool) -> None:
    no_tap = with_links(facts, drop=("vnet0",))
    guest = domain("web1", "/dev/rl_build/vmweb1", active=running, bridges=["virbr1.2368"])
    state = "running" if running else "shut off"
    with pytest.raises(SafetyError, match=rf"virbr1.2368 \(guest web1 \({state}\) is attached to it\)"):
        ops.remove_bridge(hf(no_tap, guest), "virbr1.2368")


def test_remove_is_refused_with_any_other_port(facts: NetFacts) -> None:
    with pytest.raises(SafetyError, match=r"virbr1.68 \(port veth0\)"):
        ops.remove_bridge(hf(facts), "virbr1.68")


def test_remove_needs_the_network_facts(facts: NetFacts) -> None:
    without = host_facts(lvm_state(), domains=[domain("web1", bridges=["virbr1.68"])])
    with pytest.raises(FactsIncomplete, match="network facts were not read"):
        ops.remove_bridge(without, "virbr1.2368")  # never a guard without the taps


def test_remove_deletes_port_then_bridge_and_needs_confirm(facts: NetFacts) -> None:
    other = domain("web1", "/dev/rl_build/vmweb1", active=True, bridges=["virbr1.68"])
    plan = ops.remove_bridge(hf(with_links(facts, drop=("vnet0",)), other), "virbr1.2368")
    assert commands(plan) == [f"nmcli connection delete uuid {PORT_2368}",
                              f"nmcli connection delete uuid {BRIDGE_2368}"]
    assert plan.targets == ["virbr1.2368", "virbr1.2368"]
    with pytest.raises(ConfirmationRequired, match="confirm='virbr1.2368'"):
        require_confirmed([plan], confirmed(None))
    with pytest.raises(ConfirmationRequired):
        require_confirmed([plan], confirmed("virbr1.68"))
    require_confirmed([plan], confirmed("virbr1.2368"))


def test_remove_never_touches_host_bridges(site: Site, facts: NetFacts) -> None:
    with pytest.raises(SafetyError, match="not named like a guest bridge"):
        ops.remove_bridge(hf(facts), "br0")


def test_remove_of_a_missing_bridge_is_a_noop(site: Site, facts: NetFacts) -> None:
    assert ops.remove_bridge(hf(facts), "virbr1.4000").empty


def test_remove_of_a_bridge_without_profile_is_refused(site: Site, facts: NetFacts) -> None:
    with pytest.raises(ops.NotManaged, match="ip link delete virbr1.99"):
        ops.remove_bridge(hf(facts), "virbr1.99")


def test_plan_mode_runs_nothing_that_mutates(site: Site, facts: NetFacts) -> None:
    inner = FixtureRunner()
    host = Host(site, PlanRunner(inner), "test:///default")
    f = hf(read_facts(host.runner))
    lines = run_plan(host, ops.ensure_network(f, 223), facts=f)
    assert all(line.split(" ", 1)[1].startswith(("planned", "ok")) for line in lines), lines
    planned = [r for r in host.runner.records if r.mutates]
    assert planned and not any(r.executed for r in planned)


def test_need_network_accepts_vlan_or_bridge(site: Site) -> None:
    assert ops.need_network(site, "2368") == "virbr1.2368"
    assert ops.need_network(site, "virbr1.99") == "virbr1.99"
    with pytest.raises(NotFound):
        ops.need_network(site, "99")


def test_lab_network_made_by_kvmops_converged(site: Site) -> None:
    lab = read_facts(FixtureRunner(FixtureRunner.LAB))
    plan = ops.ensure_network(hf(lab), 223)
    assert plan.empty and not plan.notes, plan.render()
    remove = ops.remove_bridge(hf(lab), "virbr1.223")  # its only port is the VLAN: no guest
    assert commands(remove) == ["nmcli connection delete uuid 70af868c-583e-4ea4-afe5-6566df2e3f06",
                                "nmcli connection delete uuid ed3ace0f-9a87-4557-8728-2656bdcbe4fb"]


def test_bridges_in_use_from_taps_and_every_defined_guest(facts: NetFacts) -> None:
    xml = ("<domain type='kvm'><name>t1</name><memory unit='KiB'>1048576</memory><vcpu>1</vcpu>"
           "<devices><interface type='bridge'><source bridge='virbr1.68'/></interface>"
           "<interface type='network'><source network='default'/></interface></devices></domain>")
    off = DomainInfo("t1", "shut off", False, False, True, xml, xml)
    used = hf(facts, off).bridges_in_use
    assert set(used) == {"virbr1.2368", "virbr1.68"}  # vnet0 is a tun port; veth0 is no guest NIC
    assert used["virbr1.68"] == "guest t1 (shut off) is attached to it"
