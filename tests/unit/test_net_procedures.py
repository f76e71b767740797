"""The host-network procedure as functions over facts: check, procedure, verify (real
captured network facts of the guide's host and of the lab VM)."""

from __future__ import annotations

import dataclasses

import pytest

from kvmops.facts.net import read_net as read_facts
from kvmops.hostfacts import FactsIncomplete, HostFacts
from kvmops.net.facts import NetFacts
from kvmops.procedures import host_network
from kvmops.procedures.base import PreconditionFailed
from kvmops.site import load_site
from tests.support.facts import host_facts
from tests.support.netns import FixtureRunner
from tests.unit.test_guest_testbed import lvm_state

SITE = load_site()


def hf(net: NetFacts | None) -> HostFacts:
    return host_facts(lvm_state(), net=net)


@pytest.fixture
def guide() -> HostFacts:
    return hf(read_facts(FixtureRunner()))


@pytest.fixture
def lab() -> HostFacts:
    return hf(read_facts(FixtureRunner(FixtureRunner.LAB)))


def test_check_says_what_the_site_says_and_the_drift(guide: HostFacts) -> None:
    text = host_network.check(guide, 68)
    assert text.splitlines()[0] == ("VLAN 68: bridge virbr1.68, 132.230.68.0/24, gateway 132.230.68.254, "
                                    "DHCP unknown (the guide does not say)")
    assert "drift: ageing time 300 s in profile 'virbr1.68', must be 0" in text
    assert "the bridge is as the guide wants it" in host_network.check(hf(read_facts(FixtureRunner(
        FixtureRunner.LAB))), 223)


def test_check_refuses_without_networkmanager() -> None:
    with pytest.raises(PreconditionFailed, match="NetworkManager does not answer .*no bus.*systemctl start"):
        host_network.check(hf(NetFacts(nm_running=False, nm_error="no bus")), 2368)


def test_the_procedure_needs_the_network_facts() -> None:
    with pytest.raises(FactsIncomplete, match="network facts were not read"):
        host_network.procedure(hf(None), 2368)


def test_procedure_previews_the_fix_and_plans_again_from_fresh_facts(guide: HostFacts) -> None:
    proc = host_network.procedure(guide, 68, host_network.stp_choice("off"))
    (preview,) = proc.preview
    assert [s.cmd.argv[:3] for s in preview.steps if s.cmd] == [
        ("nmcli", "connection", "modify"), ("nmcli", "device", "reapply"),  # the bridge fixed live
        ("nmcli", "connection", "add")]  # its missing VLAN port
    (phase,) = proc.phases
    assert phase.wanted == host_network.wanted() and phase.wanted.net
    assert phase.plan(guide).render() == preview.render()
    with pytest.raises(PreconditionFailed, match="stp='maybe'"):
        host_network.stp_choice("maybe")


def test_verify_holds_on_the_lab_network_kvmops_made(lab: HostFacts) -> None:
    verdict = host_network.verify(lab, 223)
    assert verdict.ok, verdict.render()
    assert "ok: ens802f1.223 (VLAN 223 on ens802f1) is a port of virbr1.223 in the kernel" in verdict.lines


def test_verify_fails_on_what_is_not_so(guide: HostFacts, lab: HostFacts) -> None:
    failed = [ln for ln in host_network.verify(guide, 68).lines if ln.startswith("FAILED")]
    assert "FAILED: virbr1.68 has ageing time 0 in the kernel" in failed
    assert not host_network.verify(guide, 223).ok  # no such bridge
    bridge = lab.net.link("virbr1.223")
    assert bridge is not None
    addressed = dataclasses.replace(bridge, addresses=("10.0.0.1/24",))
    links = tuple(addressed if lk.name == "virbr1.223" else lk for lk in lab.net.links)
    with_ip = host_network.verify(hf(dataclasses.replace(lab.net, links=links)), 223)
    assert [ln for ln in with_ip.lines if ln.startswith("FAILED")] == ["FAILED: virbr1.223 has no IP address"]
    moved = tuple(dataclasses.replace(lk, master="") if lk.is_vlan else lk for lk in lab.net.links)
    assert not host_network.verify(hf(dataclasses.replace(lab.net, links=moved)), 223).ok
