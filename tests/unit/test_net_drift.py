"""Facts read from real captured outputs, and the drift report against the guide's site.

The captured namespace holds: virbr1.2368 made as the guide wants (its VLAN port profile
exists but cannot come up: no uplink), virbr1.68 made with NetworkManager's defaults (STP on,
ageing 300 s, IP auto), and virbr1.99 made with ``ip`` and given an address.
"""

from __future__ import annotations

import dataclasses

import pytest

from kvmops.facts.net import read_net as read_facts
from kvmops.net import drift
from kvmops.net.facts import NetFacts
from kvmops.net.iplink import Link
from kvmops.site import Site, load_site
from tests.support.netns import FixtureRunner


@pytest.fixture
def site() -> Site:
    return load_site()


@pytest.fixture
def facts() -> NetFacts:
    return read_facts(FixtureRunner())


def problems(report: drift.DriftReport, bridge: str, severity: str = drift.DRIFT) -> list[str]:
    return [f.problem for f in report.findings if f.bridge == bridge and f.severity == severity]


def test_read_facts_joins_profiles_with_where_they_are_active(facts: NetFacts) -> None:
    assert facts.nm_running
    assert [(p.id, p.device) for p in facts.profiles] == [
        ("virbr1.68", "virbr1.68"), ("virbr1.2368", "virbr1.2368"), ("ens802f1.2368", "")]
    assert facts.bridges() == ("virbr1.2368", "virbr1.68", "virbr1.99")
    assert [p.id for p in facts.port_profiles("virbr1.2368")] == ["ens802f1.2368"]
    assert [lk.name for lk in facts.ports("virbr1.2368")] == ["vnet0"]


def test_read_facts_runs_only_read_commands() -> None:
    runner = FixtureRunner()
    read_facts(runner)
    assert runner.records and not any(r.mutates for r in runner.records)
    assert runner.records[-1].command.startswith("nmcli -t -e yes -f connection.id,")
    assert runner.records[-1].command.endswith(
        "uuid 259a8068-19e2-4b2b-aa6b-9785898466a4 uuid 065e2c64-580c-4cc9-84ad-71db60000140 "
        "uuid c9b7e8db-ca49-46e4-b064-67a519491f81")


def test_guide_bridge_only_lacks_its_kernel_vlan_port(site: Site, facts: NetFacts) -> None:
    report = drift.drift_report(site, facts)
    assert problems(report, "virbr1.2368") == [
        "no VLAN interface is a port of virbr1.2368 in the kernel"]
    (status,) = [s for s in report.statuses if s.bridge == "virbr1.2368"]
    assert status.port_profile is not None and status.port_profile.vlan_id == 2368
    assert status.ports == ("vnet0",)


def test_nm_default_bridge_drifts_in_ageing_ip_and_port(site: Site, facts: NetFacts) -> None:
    report = drift.drift_report(site, facts)
    assert problems(report, "virbr1.68") == [
        "ageing time 300 s in profile 'virbr1.68', must be 0",
        "ipv4.method is 'auto', must be 'disabled'",
        "ipv6.method is 'auto', must be 'disabled'",
        "kernel ageing_time is 300 s, must be 0",
        "VLAN port ens802f1.68 missing (no VLAN profile with master virbr1.68)",
        "no VLAN interface is a port of virbr1.68 in the kernel",
    ]
    assert problems(report, "virbr1.68", drift.NOTE) == [
        "STP is on: a new guest port waits ~30 s before it forwards"]


def test_missing_bridges_and_the_extra_one(site: Site, facts: NetFacts) -> None:
    report = drift.drift_report(site, facts)
    assert problems(report, "virbr1.223") == ["bridge missing"]
    assert problems(report, "virbr1.2367") == ["bridge missing"]
    assert problems(report, "virbr1.99") == [
        "bridge named like a guest bridge but not in the site's networks"]
    assert [s.bridge for s in report.statuses] == [
        "virbr1.223", "virbr1.2367", "virbr1.2368", "virbr1.68", "virbr1.99"]
    assert not report.ok


def test_render_shows_table_and_fixes(site: Site, facts: NetFacts) -> None:
    text = drift.render(drift.drift_report(site, facts))
    lines = text.splitlines()
    assert lines[0].split() == ["VLAN", "BRIDGE", "PROFILE", "AGEING", "STP", "IP", "VLAN", "PORT",
                                "PORTS", "STATUS"]
    row68 = next(ln for ln in lines if ln.startswith("68 "))
    assert row68.split() == ["68", "virbr1.68", "active", "300s", "on", "auto/auto", "-", "veth0", "DRIFT"]
    row99 = next(ln for ln in lines if ln.startswith("extra"))
    assert "disabled" not in row99 and "DRIFT" in row99
    assert "    fix: kvmops net bridge 68 --apply" in lines


def test_wrong_vlan_link_in_the_kernel_is_drift(site: Site, facts: NetFacts) -> None:
    port = Link("ens802f1.2367", 20, kind="vlan", slave_kind="bridge", master="virbr1.2368",
                parent="ens802f1", vlan_id=2367)
    report = drift.drift_report(site, dataclasses.replace(facts, links=(*facts.links, port)))
    assert problems(report, "virbr1.2368") == [
        "kernel port ens802f1.2367 is VLAN 2367 on 'ens802f1', must be VLAN 2368 on ens802f1"]


def test_all_good_reports_no_drift(site: Site, facts: NetFacts) -> None:
    only = dataclasses.replace(site, networks=(site.network(2368),))
    port = Link("ens802f1.2368", 20, kind="vlan", slave_kind="bridge", master="virbr1.2368",
                parent="ens802f1", vlan_id=2368)
    links = (*(lk for lk in facts.links if lk.name != "virbr1.99"), port)
    report = drift.drift_report(only, dataclasses.replace(facts, links=links))
    extra = [s.bridge for s in report.statuses if s.network is None]
    assert extra == ["virbr1.68"]  # the site no longer lists VLAN 68
    (status,) = [s for s in report.statuses if s.bridge == "virbr1.2368"]
    assert status.ok and status.findings == ()


def test_nm_not_running_is_reported_with_kernel_facts(site: Site) -> None:
    facts = NetFacts(links=read_facts(FixtureRunner()).links, nm_running=False, nm_error="down")
    report = drift.drift_report(site, facts)
    assert report.general[0].problem == "NetworkManager not reachable: down"
    assert problems(report, "virbr1.68")[0] == "kernel ageing_time is 300 s, must be 0"


def test_guest_bridge_pattern_follows_the_site(site: Site) -> None:
    pattern = drift.guest_bridge_pattern(site)
    assert pattern.match("virbr1.4000")
    assert not pattern.match("virbr0") and not pattern.match("virbr1.x") and not pattern.match("br0")


def test_lab_network_made_by_kvmops_has_no_drift(site: Site) -> None:
    """Real outputs from the lab VM after `kvmops net bridge 223 --apply` (802.1Q works there)."""
    facts = read_facts(FixtureRunner(FixtureRunner.LAB))
    assert facts.port_vlans == {"ens802f1.223": (1,)}
    report = drift.drift_report(site, facts)
    (status,) = [s for s in report.statuses if s.bridge == "virbr1.223"]
    assert status.findings == ()
    assert status.port_link is not None and status.port_link.vlan_id == 223
    assert status.port_link.parent == "ens802f1" and status.ports == ("ens802f1.223",)
    row = next(ln for ln in drift.render(report).splitlines() if ln.startswith("223 "))
    assert row.split() == ["223", "virbr1.223", "active", "0s", "off", "disabled", "ens802f1.223(id", "223)",
                           "ens802f1.223", "ok"]
