"""Lab tier: a guest made BY THE RUNBOOKS from the realistic cloud image works (issue 12, items
2-4), and the other runbooks act correctly on it (item 3).

``guest-create --apply`` runs in the lab from the cloud image (no login user in it) with
``setup=tweaks`` and with ``setup=nocloud`` (:func:`kvmops_lab.runbookguest.create`: told not
to wait for the boot, the run says "boot NOT verified" and fails its verify step; the guest is
destroyed in the lab right after). The disk (and seed) the runbook wrote is then booted here
with one level of QEMU (:func:`kvmops_lab.guestboot.boot_from_lab`); asserted from outside:
login prompt on ttyS0, SSH as the login user with the key at its static address, default
route via .254, the guide's DNS, ``sudo -n true``, root's password on the console.

On the tweaks guest: guest-resize, then lv-snapshot; a boot shows ``df /`` larger and writes a
file; lv-restore; a boot shows the file gone. guest-inspect and guest-unreachable read the
guest's own journal and os-release from its disk.

What it does not prove: libvirt's own start of this domain and the bridge (QEMU's user network
plays the VLAN: see guestboot.py), a RHEL userland (the image is Debian in GenericCloud's shape).
One guest per setup, shared by the module's tests; four boots in all.
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

from kvmops.cmd import read
from kvmops.facts import Wanted, read_facts
from kvmops.host import Host, connect
from kvmops.net import ops as net_ops
from kvmops.site import Site
from kvmops_lab import guestboot as gb
from kvmops_lab import runbookguest as rg
from kvmops_lab.state import LabState
from tests.support.run import run_plan

pytestmark = [pytest.mark.lab, pytest.mark.skipif(
    os.environ.get("KVMOPS_LAB_GUESTS") != "1",
    reason="runbook-made cloud guests are opt-in: KVMOPS_LAB=1 KVMOPS_LAB_GUESTS=1 "
           "(~25 min on 2 cores; setup=nocloud not yet passing: issue 12 open)")]

VLAN = 2368
GATEWAY = "10.5.68.254"
DNS = "132.230.200.200"  # the guide's DNS server (the lab site's network.dns)
PASSWORD = "Runbook-root-4c1e"  # root's password of a throwaway guest in the lab
ADDRESS = {"tweaks": "10.5.68.61", "nocloud": "10.5.68.62"}
NAME = {"tweaks": "rbtweaks", "nocloud": "rbnocloud"}
BOOT_S, SSH_S = 420.0, 300.0
TIMES: dict[str, float] = {}


@dataclass(frozen=True)
class FirstBoot:
    guest: rg.RunbookGuest
    verdict_message: str
    booted: bool
    seen: rg.Observed | None
    machine_id: str
    os_release: str


@pytest.fixture(scope="module")
def host(lab_site: Site) -> Iterator[Host]:
    h = connect(lab_site, apply=True)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rbkey") / "id_rb"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kvmops-rb", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def network(host: Host, lab_state: LabState) -> Iterator[str]:
    """The VLAN's bridge by host-network (removed after, if this module made it)."""
    bridge = host.site.network(VLAN).bridge
    had = host.run(read("ip", "link", "show", bridge, ok=(0, 1))).returncode == 0
    rg.runbook(str(lab_state.site), "host-network", {"vlan": VLAN, "stp": "off"})
    try:
        yield bridge
    finally:
        if not had:
            run_plan(host, net_ops.remove_bridge(read_facts(host, Wanted(net=True)), bridge), bridge,
                     progress=print)


def _first_boot(host: Host, lab: LabState, key: Path, setup: str) -> Iterator[FirstBoot]:
    name = NAME[setup]
    rg.remove(host, name)
    try:
        t0 = time.monotonic()
        guest = rg.create(host, str(lab.site), name, setup, vlan=VLAN, address=ADDRESS[setup], key=key,
                          root_password=PASSWORD)
        TIMES[f"{setup}: guest-create + destroy (runbooks)"] = time.monotonic() - t0
        t1 = time.monotonic()
        with gb.boot_from_lab(host, lab, name, address=guest.address, vlan=VLAN, say=print) as g:
            verdict = g.wait_for_login(BOOT_S)
            seen, mid, osr = None, "", ""
            if verdict.booted:
                TIMES[f"{setup}: qemu start to login prompt"] = verdict.seconds
                seen = rg.observe(g, guest, PASSWORD, SSH_S)
                mid = gb.read_file(g, guest.login, "/etc/machine-id").strip()
                osr = gb.read_file(g, guest.login, "/etc/os-release")
            else:
                print(g.console()[-3000:])
        TIMES[f"{setup}: first boot session"] = time.monotonic() - t1
        yield FirstBoot(guest, verdict.message, verdict.booted, seen, mid, osr)
    finally:
        rg.remove(host, name)
        print("\nrunbook guest timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in TIMES.items()))


@pytest.fixture(scope="module")
def tweaks(host: Host, lab_state: LabState, key: Path, network: str) -> Iterator[FirstBoot]:
    yield from _first_boot(host, lab_state, key, "tweaks")


@pytest.fixture(scope="module")
def nocloud(host: Host, lab_state: LabState, key: Path, network: str) -> Iterator[FirstBoot]:
    yield from _first_boot(host, lab_state, key, "nocloud")


def _works(first: FirstBoot) -> rg.Observed:
    g = first.guest
    assert first.booted, first.verdict_message
    seen = first.seen
    assert seen is not None
    assert seen.addresses == [f"{g.address}/24"]
    assert seen.gateway == GATEWAY
    assert DNS in seen.dns_nm and DNS in seen.dns_resolv, (seen.dns_nm, seen.dns_resolv)
    assert seen.sudo, "sudo -n true failed for the login user"
    assert seen.root_uid_on_console == "0" and seen.wrong_password_refused
    assert seen.passwd_line.startswith(f"{g.login.user}:") and seen.passwd_line.endswith(":/bin/bash")
    assert f"/home/{g.login.user}:" in seen.passwd_line
    return seen


def test_guest_create_tweaks_makes_a_guest_that_works(tweaks: FirstBoot) -> None:
    """setup=tweaks on a stock image: the login user is created offline (item 4) and the plan says so."""
    created = json.loads(tweaks.guest.created.notebook_path.read_text())
    text = "".join("".join(o.get("text", "")) for c in created["cells"] for o in c.get("outputs", []))
    assert f"login user {tweaks.guest.login.user} (created like cloud-init would" in text, "the plan does not say so"
    assert "boot NOT verified: console_seconds=0 skipped" in text  # the runbook claimed no boot it did not see
    seen = _works(tweaks)
    assert {"wheel", "adm", "systemd-journal"} <= set(seen.groups), seen.groups


def test_guest_create_nocloud_makes_a_guest_that_works(nocloud: FirstBoot) -> None:
    seen = _works(nocloud)
    assert "status: done" in seen.cloud_init, seen.cloud_init
    assert "wheel" in seen.groups


def _notebook_text(rec: object) -> str:
    nb = json.loads(rec.notebook_path.read_text())  # type: ignore[attr-defined]
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


def test_inspect_and_unreachable_read_the_guests_own_logs(tweaks: FirstBoot, lab_state: LabState) -> None:
    assert tweaks.booted, tweaks.verdict_message
    site = str(lab_state.site)
    pretty = next(ln for ln in tweaks.os_release.splitlines() if ln.startswith("PRETTY_NAME=")).replace('"', "")
    for name in ("guest-inspect", "guest-unreachable"):
        text = _notebook_text(rg.runbook(site, name, {"guest": tweaks.guest.name, "lines": 40}))
        assert pretty in text, f"{name} does not show the guest's os-release"
        # the guest's own journal: its first boot here ended with boot_from_lab's ACPI power-off
        assert "systemd[1]: Reached target poweroff.target" in text, f"{name} shows not the guest's journal"


def test_resize_snapshot_change_restore_on_the_booted_guest(tweaks: FirstBoot, host: Host,
                                                            lab_state: LabState) -> None:
    assert tweaks.booted and tweaks.seen is not None, tweaks.verdict_message
    g, site = tweaks.guest, str(lab_state.site)
    before = tweaks.seen.root_fs_bytes
    t0 = time.monotonic()
    rg.runbook(site, "guest-resize", {"guest": g.name, "size": "3g"})
    rg.runbook(site, "lv-snapshot", {"guest": g.name})
    TIMES["resize + snapshot (runbooks)"] = time.monotonic() - t0
    marker = "/root/kvmops-after-snapshot"
    with gb.boot_from_lab(host, lab_state, g.name, address=g.address, vlan=VLAN, say=print) as b:
        verdict = b.wait_for_login(BOOT_S)
        assert verdict.booted, verdict.message
        b.wait_for_ssh(g.login, SSH_S)
        grown = gb.root_fs_bytes(b, g.login)
        rg.write_file(b, g.login, marker, "changed")
        assert rg.file_or_none(b, g.login, marker) == "changed"
    assert grown > before + (900 << 20), (before, grown)  # 2 GiB -> 3 GiB
    vg, lv = g.lv.split("/")
    snaps = [r["lv_name"] for r in _lvs(host) if r["origin"] == lv]
    assert len(snaps) == 1, snaps
    t1 = time.monotonic()
    rg.runbook(site, "lv-restore", {"guest": g.name, "interval": 1}, confirm=f"{vg}/{snaps[0]}")
    TIMES["lv-restore (runbook)"] = time.monotonic() - t1
    assert [r for r in _lvs(host) if r["origin"] == lv] == []
    with gb.boot_from_lab(host, lab_state, g.name, address=g.address, vlan=VLAN, say=print) as b:
        verdict = b.wait_for_login(BOOT_S)
        assert verdict.booted, verdict.message
        b.wait_for_ssh(g.login, SSH_S)
        assert rg.file_or_none(b, g.login, marker) is None, "the change survived lv-restore"
        assert gb.root_fs_bytes(b, g.login) == grown  # the snapshot was taken after the resize


def _lvs(host: Host) -> list[dict[str, str]]:
    out = host.run(read("lvs", "--reportformat", "json", "-o", "lv_name,origin,lv_attr", host.site.vg)).stdout
    rows: list[dict[str, str]] = json.loads(out)["report"][0]["lv"]
    return rows
