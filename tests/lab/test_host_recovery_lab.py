"""Lab tier: host-recovery after a real power cut of the lab (issue 14).

Three small guests run in the lab: rcauto (autostart on), rcdns and rcweb (autostart off: only
libvirt's log says they were running). rcweb's LV has a snapshot whose merge was asked while the
guest ran (LVM defers it to the next activation: the boot after the outage). Then the lab's QEMU
is killed and the lab booted again on the disks it left (``kvmops lab up --keep-disks``, the same
SSH port so the session's site stays valid) and ``host-recovery --apply`` runs with the order
"rcweb,rcdns". Asserted from the lab's own state: the merge done once (the region written after
the snapshot has the snapshot's content again, no ``lvconvert`` run by the runbook), every guest
meant to run runs, each started once after the boot (libvirt's log), rcweb before rcdns, each
verified booted by its login prompt; a second run starts nothing.

The small guests boot one at a time (each shows its login prompt before the next starts; after
the cut, libvirt's autostart of rcauto before host-recovery's starts): several nested guests
booting side by side in the lab are what once panicked its kernel (tests/lab/README.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

import kvmops_lab as lab
from kvmops.cmd import read
from kvmops.host import Host, connect
from kvmops.runbook.execute import run_runbook
from kvmops.site import Site, load_site
from kvmops_lab import recovery as rc
from kvmops_lab.cloud_image import ensure_cloud_image
from kvmops_lab.guest_image import ensure_guest_image
from kvmops_lab.nested import start_and_wait, wait_for_login, why_silent
from kvmops_lab.state import LabState
from tests.support.run import notebook_text

pytestmark = pytest.mark.lab

GUESTS = {"rcauto": True, "rcdns": False, "rcweb": False}  # name: autostart
ORDER = "rcweb,rcdns"
BOOT_SECONDS = 300.0
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def site(lab_site: Site) -> Iterator[Site]:
    yield lab_site
    host = connect(load_site(lab_site.path), apply=True)  # the lab after the cut: same site file
    try:
        for name in GUESTS:
            rc.remove_guest(host, name)
    finally:
        host.close()
        print("\nhost recovery timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in TIMES.items()))


def _silent(host: Host, name: str) -> str:
    return why_silent(host, name, rc.serial_log(name))


def test_power_cut_with_guests_running_and_a_merge_pending(site: Site, lab_state: LabState) -> None:
    t0 = time.monotonic()
    host = connect(site, apply=True)
    try:
        guests = {n: rc.make_guest(host, n, autostart=a) for n, a in GUESTS.items()}
        web = guests["rcweb"]
        original = rc.region_digest(host, web.lv)
        for name in GUESTS:  # one at a time, each to its login prompt
            _, verdict, _ = start_and_wait(host, name, rc.serial_log(name), BOOT_SECONDS)
            assert verdict.booted, f"{name} before the cut: {verdict.message}\n{_silent(host, name)}"
        snap = rc.pending_merge(host, web, print)
        assert rc.region_digest(host, web.lv) != original  # the change the merge must take back
        assert sorted(rc.running(host)) == sorted(GUESTS)
        rc.forget_serial_logs(host, GUESTS)  # so a login prompt read after the cut is of a new boot
    finally:
        host.close()
    TIMES["guests, snapshot, change, merge asked"] = time.monotonic() - t0

    t1 = time.monotonic()
    lab.power_cut(say=print)
    cut = datetime.now(UTC)
    state = lab.up(port=lab_state.port, keep_disks=True, guest_image=ensure_guest_image(),
                   cloud_image=ensure_cloud_image().raw, say=print)
    TIMES["power cut, lab up on its disks"] = time.monotonic() - t1
    assert state.port == lab_state.port

    host = connect(load_site(state.site), apply=True)
    try:
        seen_at_boot = host.run(read("lvs", "-a", "-o", "lv_name,lv_attr,origin", host.site.vg)).stdout
        print(f"after the boot:\n{seen_at_boot}")
        t2 = time.monotonic()
        host.run(read("virsh", "list", "--all"))  # libvirtd is up (socket-activated): it autostarts rcauto
        verdict, _ = wait_for_login(host, rc.serial_log("rcauto"), BOOT_SECONDS)
        assert verdict.booted, f"rcauto after the cut: {verdict.message}\n{_silent(host, 'rcauto')}"
        TIMES["rcauto autostarted and booted"] = time.monotonic() - t2
        t2 = time.monotonic()
        rec = run_runbook("host-recovery", {"order": ORDER, "boot_seconds": 300.0}, site=str(state.site),
                          apply=True, progress=print)
        TIMES["host-recovery --apply"] = time.monotonic() - t2
        text = notebook_text(rec)
        assert rec.ok, f"host-recovery failed at {rec.failed_step!r}: {rec.error}"
        assert not [c for c in rec.commands if "lvconvert" in str(c.get("command"))], "a merge was started again"
        vg, lv = web.lv.split("/")
        assert snap.split("/")[1] not in host.run(read("lvs", "-a", "-o", "lv_name", vg)).stdout
        assert rc.region_digest(host, web.lv) == original, "the merge did not take the change back"
        assert sorted(rc.running(host)) == sorted(GUESTS)
        starts = {n: [r.start for r in rc.qemu_runs(host, n) if r.start > cut] for n in GUESTS}
        assert all(len(s) == 1 for s in starts.values()), starts  # each started once since the outage
        assert starts["rcweb"][0] < starts["rcdns"][0], starts  # the declared order
        for name in ("rcweb", "rcdns"):
            assert f"{name} booted: login prompt after" in text, f"{name}'s boot was not verified"
        merging = f"{lv}-before" in seen_at_boot
        print(f"the merge was {'still running' if merging else 'done'} when the lab answered SSH; "
              f"host-recovery {'waited for it' if 'wait until the merge' in text else 'had nothing to wait for'}")
        if merging:
            assert "wait until the merge" in text

        t3 = time.monotonic()
        again = run_runbook("host-recovery", {"order": ORDER, "boot_seconds": 300.0}, site=str(state.site),
                            apply=True, progress=print)
        TIMES["host-recovery again"] = time.monotonic() - t3
        assert again.ok and "virsh start" not in "".join(str(c.get("command")) for c in again.commands)
        assert all(len([r for r in rc.qemu_runs(host, n) if r.start > cut]) == 1 for n in GUESTS)
    finally:
        host.close()
