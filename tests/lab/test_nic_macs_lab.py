"""Lab tier, issue 24 item 4: addresses that follow the NIC, on the realistic cloud image with
both naming schemes and both setups: the two combinations that the default tier does not boot.

The default pair is booted by tests/lab/test_runbook_guests.py, whose guests have two NICs each
(VLANs 2368 and 223) and a static address on each: ``rbtweaks`` with the image as it is
(``net.ifnames=0``: the guide's ``eth0``), setup=tweaks, the default route on the first NIC;
``rbnocloud`` with predictable names (``enp1s0``; :mod:`kvmops_lab.ifnames` takes
``net.ifnames=0`` off its kernel lines in a qcow2 overlay), setup=nocloud, the default route on
the NIC ``gateway_vlan`` names (the second). One boot per guest proves both the runbooks and
the NICs (a boot costs ~4-7 min on 2 cores).

Here, with ``KVMOPS_LAB_NICS=1``: ``nmeth2`` (eth, nocloud) and ``nmenp1`` (enp, tweaks), both
with the route on the second NIC. Each is made by ``guest-create --apply`` in the lab and its
disk booted here with one level of QEMU (:func:`kvmops_lab.guestboot.boot_from_lab`), each NIC
on a QEMU user network of its own playing its VLAN (its router .254), with the MACs of the
lab's definition and the PCI buses libvirt gave them. The checks (tests/support/nic_checks.py),
asserted from outside: the plan showed each NIC's MAC (and the DHCP reminder named it) before
the guest existed, and the lab's definition has exactly those MACs; SSH with the key reaches
EACH static address (each forwarded port reaches one address only); the guest names the NICs as
its image says and each NIC, found by its MAC, has its address; exactly one default route, via
the gateway of the VLAN the plan said, on that NIC; the DNS server on that NIC only, and in
resolv.conf; one NetworkManager profile per NIC, bound by its MAC, none with an interface-name
(tweaks: kvmops' keyfiles; nocloud: cloud-init's, matched by MAC).

That a moved guest (guest-move) and a guest restored under its own name keep their MACs is
asserted between two labs in test_two_hosts.py.

Set ``KVMOPS_LAB_NIC_CAPTURE=DIR`` to keep each guest's profiles (fixtures for the unit tier).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.cmd import read
from kvmops.guests.xml import read_domain
from kvmops.host import Host, connect
from kvmops.site import Site
from kvmops_lab import guestboot as gb
from kvmops_lab import nicview as nv
from kvmops_lab import runbookguest as rg
from kvmops_lab.prepare import CLOUD_IMAGE_FILE
from kvmops_lab.state import LabState
from tests.support import nic_checks as nc
from tests.support.run import notebook_text
from tests.support.sshd import keygen

pytestmark = [pytest.mark.lab, pytest.mark.skipif(
    os.environ.get("KVMOPS_LAB_NICS") != "1",
    reason="the other two NIC combinations are opt-in (KVMOPS_LAB_NICS=1); the default pair is in test_runbook_guests")]

PASSWORD = "Nic-macs-root-7d2a"  # root's password of throwaway guests in the lab
BOOT_S, SSH_S = 600.0, 420.0
TIMES: dict[str, float] = {}
CASES = (nc.NicCase("nmeth2", "eth", "nocloud", ("10.5.68.72", "132.230.223.72"), 223),
         nc.NicCase("nmenp1", "enp", "tweaks", ("10.5.68.73", "132.230.223.73"), 223))


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


def _boot(host: Host, lab: LabState, case: nc.NicCase, login: gb.SshLogin) -> tuple[bool, str, tuple[str, ...],
                                                                                  nv.NicView | None, str]:
    t0 = time.monotonic()
    with gb.boot_from_lab(host, lab, case.name, address=case.addresses[0], vlan=nc.VLANS[0], more=case.more(),
                          say=print) as g:
        verdict = g.wait_for_login(BOOT_S)
        if not verdict.booted:
            print(g.console()[-3000:])
            return False, verdict.message, (), None, ""
        TIMES[f"{case.name}: qemu start to login prompt"] = verdict.seconds
        g.wait_for_ssh(login, SSH_S)
        status = gb.cloud_init_status(g, login) if case.setup == "nocloud" else ""
        reached, view = nv.reach_each(g, login), nv.look(g, login)
    TIMES[f"{case.name}: boot session"] = time.monotonic() - t0
    return True, verdict.message, reached, view, status


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c.naming}-{c.setup}")
def seen(request: pytest.FixtureRequest, host: Host, lab_state: LabState, key: Path, two_vlans: tuple[str, ...],
         enp_image: str) -> Iterator[nc.Seen]:
    case: nc.NicCase = request.param
    rg.remove(host, case.name)
    try:
        t0 = time.monotonic()
        made = rg.create(host, str(lab_state.site), case.name, case.setup, vlan=nc.VLANS[0],
                         address=case.addresses[0], more=case.more(), gateway_vlan=case.gateway_vlan, key=key,
                         root_password=PASSWORD, image=enp_image if case.naming == "enp" else CLOUD_IMAGE_FILE)
        TIMES[f"{case.name}: guest-create + destroy (runbooks)"] = time.monotonic() - t0
        macs = read_domain(host.run(read("virsh", "dumpxml", "--inactive", case.name)).stdout).macs
        booted, verdict, reached, view, status = _boot(host, lab_state, case, made.login)
        nc.capture(f"{case.naming}-{case.setup}", view)
        yield nc.Seen(case, notebook_text(made.created), macs, booted, verdict, reached, view, status)
    finally:
        rg.remove(host, case.name)


@pytest.mark.parametrize("check", nc.CHECKS, ids=lambda f: f.__name__)
def test_two_nics(check: nc.Check, seen: nc.Seen) -> None:
    check(seen)
