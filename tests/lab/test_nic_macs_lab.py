"""Lab tier, issue 24 item 4: addresses that follow the NIC, on the realistic cloud image with
both naming schemes and both setups.

Guests made by ``guest-create --apply`` in the lab, each with two NICs (VLANs 2368 and 223),
a static address on each (``address`` + ``addresses``), the default route on the first or on
the one ``gateway_vlan`` names. By default two (each naming scheme once, each setup once):

- ``nmeth1``: the lab's cloud image as it is (``net.ifnames=0``: the guide's ``eth0``),
  setup=tweaks, the default route on the first NIC;
- ``nmenp2``: the same image with predictable names (``enp1s0``; :mod:`kvmops_lab.ifnames` takes
  ``net.ifnames=0`` off its kernel lines in a qcow2 overlay), setup=nocloud, the default route
  on the NIC ``gateway_vlan`` names (the second).

``KVMOPS_LAB_NICS=1`` adds the other two combinations (``nmeth2``: eth, nocloud; ``nmenp1``:
enp, tweaks; both with the route on the second NIC): four boots instead of two.

Each disk is booted here with one level of QEMU (:func:`kvmops_lab.guestboot.boot_from_lab`),
each NIC on a QEMU user network of its own playing its VLAN (its router .254), with the MACs
of the lab's definition and the PCI buses libvirt gave them. Asserted from outside: the plan
showed each NIC's MAC (and the DHCP reminder named it) before the guest existed, and the lab's
definition has exactly those MACs; a login prompt; SSH with the key reaches EACH static
address (each forwarded port reaches one address only); the guest names the NICs as its image
says (eth0/eth1 or enp1s0/enp2s0) and each NIC, found by its MAC, has its address; exactly one
default route, via the gateway of the VLAN the plan said, on that NIC; the DNS server on that
NIC only, and in resolv.conf; one NetworkManager profile per NIC, bound by its MAC, none with
an interface-name (tweaks: kvmops' keyfiles; nocloud: cloud-init's, matched by MAC).

That a moved guest (guest-move) keeps its MACs is asserted between two labs in
test_two_hosts.py (opt-in: a move copies the LVs, minutes per GiB between emulated hosts),
where the restored copy under a new name gets MACs of its own; a restore under its own name
keeping them, and the move, on the procedures' XML mapping in the unit tier
(tests/unit/test_guest_macs.py, tests/unit/test_lv_backup.py): the MAC is only in the
definition.

Set ``KVMOPS_LAB_NIC_CAPTURE=DIR`` to keep each guest's profiles (fixtures for the unit tier).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kvmops.cmd import change, read
from kvmops.facts import read_facts
from kvmops.guests.xml import read_domain
from kvmops.host import Host, connect
from kvmops.hostfacts import Wanted
from kvmops.net import ops as net_ops
from kvmops.runbook.execute import run_runbook
from kvmops.runbook.journal import RunRecord
from kvmops.site import Site
from kvmops_lab import guestboot as gb
from kvmops_lab import ifnames
from kvmops_lab import nicview as nv
from kvmops_lab import runbookguest as rg
from kvmops_lab.errors import LabError
from kvmops_lab.prepare import CLOUD_IMAGE_FILE
from kvmops_lab.state import LabState
from tests.support.run import run_plan
from tests.support.sshd import keygen

pytestmark = pytest.mark.lab

VLANS = (2368, 223)
GATEWAYS = {2368: "10.5.68.254", 223: "132.230.223.254"}
DNS = "132.230.200.200"  # the lab site's network.dns
PASSWORD = "Nic-macs-root-7d2a"  # root's password of throwaway guests in the lab
BOOT_S, SSH_S = 600.0, 420.0
TIMES: dict[str, float] = {}


@dataclass(frozen=True)
class Case:
    name: str
    naming: str  # "eth" (net.ifnames=0) or "enp" (predictable)
    setup: str
    addresses: tuple[str, str]  # NIC 1 (VLAN 2368), NIC 2 (VLAN 223)
    gateway_vlan: int  # 0: the first

    @property
    def route_vlan(self) -> int:
        return self.gateway_vlan or VLANS[0]

    def names(self) -> tuple[str, str]:
        return ("eth0", "eth1") if self.naming == "eth" else ("enp1s0", "enp2s0")


ALL_CASES = (
    Case("nmeth1", "eth", "tweaks", ("10.5.68.71", "132.230.223.71"), 0),
    Case("nmeth2", "eth", "nocloud", ("10.5.68.72", "132.230.223.72"), 223),
    Case("nmenp1", "enp", "tweaks", ("10.5.68.73", "132.230.223.73"), 223),
    Case("nmenp2", "enp", "nocloud", ("10.5.68.74", "132.230.223.74"), 223),
)
# The default lab tier boots two of them (one boot costs ~7 min on 2 cores): each naming
# scheme once, each setup once, the default route once on the first NIC and once on the one
# gateway_vlan names. KVMOPS_LAB_NICS=1 boots all four (the other two combinations).
DEFAULT_CASES = ("nmeth1", "nmenp2")
CASES = ALL_CASES if os.environ.get("KVMOPS_LAB_NICS") == "1" else \
    tuple(c for c in ALL_CASES if c.name in DEFAULT_CASES)


@dataclass(frozen=True)
class Seen:
    case: Case
    plan_text: str  # the guest-create run's notebook output
    macs: tuple[str, ...]  # of the lab's definition
    booted: bool
    verdict: str
    reached: tuple[str, ...] = ()  # `hostname -I` through each NIC's forwarded SSH port
    view: nv.NicView | None = None
    cloud_init: str = ""


@pytest.fixture(scope="module")
def host(lab_site: Site) -> Iterator[Host]:
    h = connect(lab_site, apply=True)
    try:
        yield h
    finally:
        h.close()
        print("\nNIC/MAC lab timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in TIMES.items()))


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nickey") / "id_nic"
    keygen(path, "kvmops-nic")
    return path


@pytest.fixture(scope="module")
def networks(host: Host, lab_state: LabState) -> Iterator[tuple[str, ...]]:
    """Both VLANs' bridges by host-network (removed after, if this module made them)."""
    bridges = tuple(host.site.network(v).bridge for v in VLANS)
    had = {b for b in bridges if host.run(read("ip", "link", "show", b, ok=(0, 1))).returncode == 0}
    try:
        for vlan in VLANS:
            rg.runbook(str(lab_state.site), "host-network", {"vlan": vlan, "stp": "off"})
        yield bridges
    finally:
        for b in bridges:
            if b not in had:
                run_plan(host, net_ops.remove_bridge(read_facts(host, Wanted(net=True)), b), b, progress=print)


@pytest.fixture(scope="module")
def enp_image(host: Host) -> Iterator[str]:
    had = host.run(read("test", "-e", ifnames.PREDICTABLE_IMAGE_FILE, ok=(0, 1))).returncode == 0
    t0 = time.monotonic()
    path = ifnames.ensure_predictable_image(host)
    TIMES["predictable-names image (qcow2 overlay)"] = time.monotonic() - t0
    try:
        yield path
    finally:
        if not had:
            host.run(change("rm", "-f", "--", path), check=False)


def _create(host: Host, lab: LabState, case: Case, image: str, key: Path) -> RunRecord:
    """guest-create --apply (the boot not waited for: see kvmops_lab.runbookguest), then destroyed."""
    params: dict[str, object] = {
        "guest": case.name, "vlans": ",".join(map(str, VLANS)), "memory": "1g", "vcpus": 1, "size": "2g",
        "image": image, "setup": case.setup, "address": case.addresses[0],
        "addresses": f"{VLANS[1]}={case.addresses[1]}", "gateway_vlan": case.gateway_vlan,
        "keys": Path(f"{key}.pub").read_text().strip(), "root_password": PASSWORD, "console_seconds": 0.0}
    rec = run_runbook("guest-create", params, site=str(lab.site), apply=True, progress=print)
    if rec.ok or rec.failed_step != "Verify the guest" or rg.SKIPPED not in (rec.error or ""):
        raise LabError(f"guest-create {case.name}: expected to stop only at the unverified boot, got {rec.status} at "
                       f"{rec.failed_step!r}: {rec.error} (journal {rec.id})")
    rg.runbook(str(lab.site), "guest-lifecycle", {"guest": case.name, "action": "destroy"}, confirm=case.name)
    return rec


def _notebook_text(rec: RunRecord) -> str:
    nb = json.loads(rec.notebook_path.read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


def _wait_ssh(g: gb.BootedGuest, login: gb.SshLogin, port: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return nv.reaches(g, login, port)
        except (LabError, subprocess.TimeoutExpired):
            if time.monotonic() > deadline:
                raise
            time.sleep(3)


def _boot(host: Host, lab: LabState, case: Case, login: gb.SshLogin) -> tuple[bool, str, tuple[str, ...],
                                                                            nv.NicView | None, str]:
    t0 = time.monotonic()
    more = ((VLANS[1], case.addresses[1]),)
    with gb.boot_from_lab(host, lab, case.name, address=case.addresses[0], vlan=VLANS[0], more=more, say=print) as g:
        verdict = g.wait_for_login(BOOT_S)
        if not verdict.booted:
            print(g.console()[-3000:])
            return False, verdict.message, (), None, ""
        TIMES[f"{case.name}: qemu start to login prompt"] = verdict.seconds
        g.wait_for_ssh(login, SSH_S)
        TIMES[f"{case.name}: qemu start to ssh (NIC 1)"] = time.monotonic() - g.started
        status = gb.cloud_init_status(g, login) if case.setup == "nocloud" else ""
        reached = tuple(_wait_ssh(g, login, port, 120) for port in g.ssh_ports)
        view = nv.look(g, login)
    TIMES[f"{case.name}: boot session"] = time.monotonic() - t0
    return True, verdict.message, reached, view, status


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c.naming}-{c.setup}")
def seen(request: pytest.FixtureRequest, host: Host, lab_state: LabState, key: Path, networks: tuple[str, ...],
         enp_image: str) -> Iterator[Seen]:
    case: Case = request.param
    rg.remove(host, case.name)
    try:
        t0 = time.monotonic()
        rec = _create(host, lab_state, case, enp_image if case.naming == "enp" else CLOUD_IMAGE_FILE, key)
        TIMES[f"{case.name}: guest-create + destroy (runbooks)"] = time.monotonic() - t0
        macs = read_domain(host.run(read("virsh", "dumpxml", "--inactive", case.name)).stdout).macs
        login = gb.SshLogin(host.site.login_user, key)
        booted, verdict, reached, view, status = _boot(host, lab_state, case, login)
        _capture(case, view)
        yield Seen(case, _notebook_text(rec), macs, booted, verdict, reached, view, status)
    finally:
        rg.remove(host, case.name)


def _capture(case: Case, view: nv.NicView | None) -> None:
    folder = os.environ.get("KVMOPS_LAB_NIC_CAPTURE")
    if not folder or view is None:
        return
    out = Path(folder) / f"{case.naming}-{case.setup}"
    out.mkdir(parents=True, exist_ok=True)
    for name, text in view.profiles.items():
        (out / name).write_text(text)
    for command, text in view.raw.items():
        (out / (command.replace(" ", "_").replace("-", "") + ".json")).write_text(text)


def test_the_plan_showed_each_nics_mac_and_the_definition_has_it(seen: Seen) -> None:
    assert len(seen.macs) == 2 and all(m.startswith("52:54:00:") for m in seen.macs), seen.macs
    for i, (vlan, mac) in enumerate(zip(VLANS, seen.macs, strict=True)):
        assert f"NIC {i + 1}: VLAN {vlan}, bridge virbr1.{vlan}, MAC {mac}" in seen.plan_text
        assert f"add a reservation for {seen.case.addresses[i]} (guest {seen.case.name}) with MAC {mac}" \
            in seen.plan_text
    assert "configures only eth0" not in seen.plan_text


def test_ssh_with_the_key_reaches_each_address(seen: Seen) -> None:
    assert seen.booted, seen.verdict
    if seen.case.setup == "nocloud":
        assert "status: done" in seen.cloud_init, seen.cloud_init
    assert len(seen.reached) == 2
    for through in seen.reached:  # `hostname -I` through each NIC's own forwarded port
        assert set(seen.case.addresses) <= set(through.split()), through


def test_each_nic_found_by_its_mac_has_its_address_under_the_images_name(seen: Seen) -> None:
    assert seen.view is not None, seen.verdict
    for mac, name, ip in zip(seen.macs, seen.case.names(), seen.case.addresses, strict=True):
        link = seen.view.by_mac(mac)
        assert link is not None, (mac, seen.view.links)
        assert (link.name, link.addresses) == (name, (f"{ip}/24",)), link


def test_one_default_route_and_dns_once_as_the_plan_said(seen: Seen) -> None:
    assert seen.view is not None, seen.verdict
    vlan = seen.case.route_vlan
    dev = seen.case.names()[VLANS.index(vlan)]
    assert seen.view.default_routes == (nv.Route(GATEWAYS[vlan], dev),), seen.view.default_routes
    assert f"default route via {GATEWAYS[vlan]} on NIC {VLANS.index(vlan) + 1} (VLAN {vlan})" in seen.plan_text
    other = seen.case.names()[1 - VLANS.index(vlan)]
    assert seen.view.dns_by_dev[dev] == (DNS,) and seen.view.dns_by_dev[other] == (), seen.view.dns_by_dev
    assert DNS in seen.view.resolv_conf, seen.view.resolv_conf


def test_one_profile_per_nic_bound_by_its_mac(seen: Seen) -> None:
    assert seen.view is not None, seen.verdict
    bound: dict[str, list[str]] = {}
    for name, text in seen.view.profiles.items():
        macs = [ln.split("=", 1)[1].strip().lower() for ln in text.splitlines() if ln.startswith("mac-address=")]
        assert not (macs and any(ln.startswith("interface-name=") for ln in text.splitlines())), (name, text)
        for m in macs:
            bound.setdefault(m, []).append(name)
    assert {m: len(bound.get(m, [])) for m in seen.macs} == {m: 1 for m in seen.macs}, seen.view.profiles.keys()
    if seen.case.setup == "nocloud":  # cloud-init's (named after the seed's entry ids, nic1/nic2)
        for m in seen.macs:
            assert "origin=cloud-init" in seen.view.profiles[bound[m][0]], bound[m]
