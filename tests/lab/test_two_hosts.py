"""Two lab hosts (issue 16's proof): a fleet from an Ansible inventory, a real guest moved from
one host to the other, an interrupted move re-run, a backup on the other host and its restore.

Two lab hosts: ``kvm1`` is the session's default lab (shared with the other lab modules: this
module leaves it as it found it) and ``kvm2`` the session's second lab (``kvmops lab up --name
kvm2``; tests/lab/conftest.py boots it once). Each is a KVM host in QEMU with its own sshd, VG
``rl_build``, libvirt and NetworkManager. In order (each test needs the ones before it; the
first failure skips the rest):

1. ``host-network`` on both (the VLAN's bridge), ``guest-create`` of the small guest on kvm1;
2. ``kvmops fleet inventory`` / ``fits`` over a YAML inventory naming both hosts (host vars hold
   their site values): both hosts with their guests and VG free; ``fits`` picks kvm2;
3. ``guest-move`` kvm1 -> kvm2 interrupted by a fault in the copy's stream, re-run (interrupted
   again before the guest is defined there): one LV on kvm2, never a second, its sha256 equal to
   the source's; refused without the confirmation; then with it: the guest boots on kvm2 (a
   login prompt on its serial console, read here) with the MAC it had on kvm1 (issue 24),
   undefined on kvm1, its LV kept there until the second confirmation removes it;
4. ``lv-backup`` of the guest on kvm2 to a folder on kvm1 (manifest and file checked there);
   then the guest lost on kvm2 (destroyed, undefined, its LV removed) and ``lv-backup-restore``
   there under its own name from the folder on kvm1: its LV (sha256 equal to the manifest's and
   to the source's), then in a second run defined with the MAC it had (issue 24), started, and
   booted (login prompt);
5. ``kvmops lab down --name kvm2`` with the restored guest running there: it powers off by
   itself within 30 s.

Every check reads the hosts itself (``lvs``, ``virsh``, ``sha256sum``, the guests' serial
consoles through libvirt), never the runbooks' output. The small guest has no ACPI handler (a
busybox init): it is powered off hard (guest-lifecycle destroy) where a real guest would be shut
down by the runbooks.

Part of the lab tier (``KVMOPS_LAB=1``; see tests/lab/README.md for its time). Timings of every
step are printed at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kvmops.cmd import change, read
from kvmops.facts import Wanted, read_facts
from kvmops.guests import boot
from kvmops.guests.xml import read_domain
from kvmops.host import Host, connect
from kvmops.net import ops as net_ops
from kvmops.procedures import guest_move as gm
from kvmops.procedures import lv_backup_restore as rs
from kvmops.runbook.journal import RunRecord
from kvmops.runners import faults
from kvmops.site import load_site
from kvmops_lab import procs
from kvmops_lab.guest_image import IMAGE_MIB, IN_LAB_FILE
from kvmops_lab.state import LabState
from tests.support.console import console_verdict
from tests.support.run import run_plan, run_timed

pytestmark = pytest.mark.lab

NAMES = ("kvm1", "kvm2")
GUEST = "mv1"
VLAN = 2368
SIZE = f"{IMAGE_MIB}m"  # the guest image's size: the LV holds just the image
SIZE_BYTES = IMAGE_MIB << 20
PLACE_DIR = "/srv/kvmops-backups"
BOOT_SECONDS = 300.0  # the small guest boots in ~40-70 s inside a lab, also with the machine loaded

TIMES: dict[str, float] = {}
DONE: set[str] = set()
DOWN: set[str] = set()  # the labs test_11 powered off
SEEN: dict[str, Any] = {}


# ----------------------------------------------------------------- the two hosts
@pytest.fixture(scope="module")
def labs(lab_state: LabState, second_lab: LabState) -> Iterator[dict[str, LabState]]:
    """kvm1: the session's default lab (as a power cut may have left it: the same site file);
    kvm2: the session's second lab."""
    t0 = time.monotonic()
    try:
        yield {"kvm1": lab_state, "kvm2": second_lab}
    finally:
        TIMES["module"] = time.monotonic() - t0
        print("\ntwo-host timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in TIMES.items()))


@pytest.fixture(scope="module")
def hosts(labs: dict[str, LabState]) -> Iterator[dict[str, Host]]:
    """A Host of each lab for the checks; the test's guests, LVs and backups cleared before and
    after, and the VLAN's bridge removed after where this module made it."""
    got = {n: connect(load_site(s.site), apply=True) for n, s in labs.items()}
    bridge = next(iter(got.values())).site.network(VLAN).bridge
    had = {n: h.run(read("ip", "link", "show", bridge, ok=(0, 1))).returncode == 0 for n, h in got.items()}
    try:
        for h in got.values():
            _clear(h)
        yield got
    finally:
        for n, h in got.items():
            if n in DOWN:  # powered off by test_11: its disks go with it
                h.close()
                continue
            _clear(h)
            if not had[n]:
                run_plan(h, net_ops.remove_bridge(read_facts(h, Wanted(net=True)), bridge), bridge, progress=print)
            h.close()


def sh(host: Host, *argv: str, ok: tuple[int, ...] = (0,)) -> str:
    return host.run(read(*argv, ok=ok)).stdout


def _clear(host: Host) -> None:
    host.run(change("virsh", "destroy", GUEST), check=False)
    host.run(change("virsh", "undefine", GUEST), check=False)
    xml = f"{host.site.xml_dir.rstrip('/')}/{GUEST}"
    host.run(change("rm", "-rf", f"{xml}.xml", f"{xml}.xml.undefined", f"/run/kvmops/lock/{GUEST}"), check=False)
    prefix = host.site.guest_lv(GUEST)
    for name, _ in sorted(lvs(host).items(), key=lambda kv: not kv[1]["origin"]):  # snapshots first
        if name.startswith(prefix):
            host.run(change("lvremove", "-f", f"{host.site.vg}/{name}"), check=False)
    host.run(change("rm", "-rf", f"{PLACE_DIR}/{GUEST}"), check=False)


def lvs(host: Host) -> dict[str, dict[str, str]]:
    out = sh(host, "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
             "lv_name,lv_size,origin,lv_tags", host.site.vg)
    return {r["lv_name"]: r for r in json.loads(out)["report"][0]["lv"]}


def tags(host: Host, lv: str) -> set[str]:
    return {t for t in lvs(host)[lv]["lv_tags"].split(",") if t}


def vg_free(host: Host) -> int:
    return int(sh(host, "vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_free", host.site.vg).strip())


def macs_of(host: Host, guest: str) -> tuple[str, ...]:
    """The MACs of the guest's definition, one per NIC (issue 24)."""
    return read_domain(sh(host, "virsh", "dumpxml", "--inactive", guest)).macs


def sha256(host: Host, path: str) -> str:
    return sh(host, "sha256sum", "--", path).split()[0]


def guests(host: Host) -> dict[str, str]:
    """Every defined guest and its state (``virsh list --all``)."""
    names = sh(host, "virsh", "list", "--all", "--name").split()
    return {n: sh(host, "virsh", "domstate", n).strip() for n in names}


def need(*steps: str) -> None:
    missing = [s for s in steps if s not in DONE]
    if missing:
        pytest.skip(f"needs the earlier step(s) {', '.join(missing)} to have passed")


def run(labs: dict[str, LabState], name: str, on: str, key: str, confirm: str | None = None, *,
        ok: bool = True, **params: object) -> RunRecord:
    """``kvmops run NAME --site <on's site> --apply [--confirm X] -p ...``, timed as ``key``."""
    return run_timed(str(labs[on].site), name, TIMES, key, confirm, ok=ok, where=f" on {on}", **params)


@pytest.fixture
def fault(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """KVMOPS_FAULT_* for the runbook's kernel (it inherits this process' environment)."""
    faults.reset()
    yield monkeypatch
    faults.reset()


# ----------------------------------------------------------------- 1. network and guest
def test_01_both_hosts_get_the_vlan_bridge(labs: dict[str, LabState], hosts: dict[str, Host]) -> None:
    for name, host in hosts.items():
        run(labs, "host-network", name, f"host-network {name}", vlan=VLAN, stp="off")
        bridge = host.site.network(VLAN).bridge
        assert json.loads(sh(host, "ip", "-d", "-j", "link", "show", bridge))[0]["linkinfo"]["info_kind"] == "bridge"
    DONE.add("network")


def test_02_the_small_guest_is_created_on_kvm1(labs: dict[str, LabState], hosts: dict[str, Host]) -> None:
    need("network")
    kvm1 = hosts["kvm1"]
    SEEN.update({f"{n} free before": vg_free(h) for n, h in hosts.items()})
    run(labs, "guest-create", "kvm1", "guest-create", guest=GUEST, vlans=str(VLAN), memory="512m", vcpus=1,
        size=SIZE, image=IN_LAB_FILE, setup="tweaks", sudo=False, console_seconds=BOOT_SECONDS)
    assert guests(kvm1)[GUEST] == "running"
    verdict = console_verdict(kvm1, GUEST)  # it runs on kvm1: the state a move starts from
    assert verdict.booted, verdict.message
    # the small guest has no ACPI handler (busybox init): off the hard way, as a real guest's shutdown would be
    run(labs, "guest-lifecycle", "kvm1", "guest-lifecycle destroy", confirm=GUEST, guest=GUEST, action="destroy")
    assert guests(kvm1)[GUEST] == "shut off"
    SEEN["source sha256"] = sha256(kvm1, f"/dev/{kvm1.site.vg}/{kvm1.site.guest_lv(GUEST)}")
    SEEN["source macs"] = macs_of(kvm1, GUEST)
    assert len(SEEN["source macs"]) == 1 and SEEN["source macs"][0].startswith("52:54:00:"), SEEN["source macs"]
    DONE.add("create")


# ----------------------------------------------------------------- 2. the fleet
def inventory(labs: dict[str, LabState], folder: Path) -> Path:
    """An Ansible inventory (YAML): group kvm with both labs; their site values as host vars."""
    hosts = {}
    for name, state in labs.items():
        site = tomllib.loads(Path(state.site).read_text())
        site.pop("host")
        hosts[name] = {"ansible_host": "127.0.0.1", "ansible_port": state.port, "ansible_user": "root",
                       "ansible_ssh_private_key_file": state.key, "kvmops_known_hosts": state.known_hosts,
                       "kvmops": site}
    inv = folder / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"kvm": {"hosts": hosts}, "web": {"hosts": {"www1": {}}}}}}))
    return inv


def kvmops(*args: str, journal: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KVMOPS_JOURNAL": str(journal)}
    return subprocess.run([sys.executable, "-m", "kvmops.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=600, check=False)


def test_03_fleet_inventory_and_fits_over_an_ansible_inventory(labs: dict[str, LabState], hosts: dict[str, Host],
                                                              tmp_path: Path) -> None:
    need("create")
    inv = inventory(labs, tmp_path)
    t0 = time.monotonic()
    res = kvmops("fleet", "inventory", "--fleet", str(inv), journal=tmp_path / "journal")
    TIMES["fleet inventory"] = time.monotonic() - t0
    print(res.stdout, res.stderr)
    assert res.returncode == 0, res.stderr
    rows = {ln.split()[0]: ln.split() for ln in res.stdout.splitlines() if ln.split() and ln.split()[0] in
            ("kvm1", "kvm2", "TOTAL", "www1")}
    assert set(rows) == {"kvm1", "kvm2", "TOTAL"}
    assert rows["kvm1"][1:3] == ["1", "0"] and rows["kvm2"][1:3] == ["0", "0"]  # guests, running
    (record,) = (tmp_path / "journal").glob("*-fleet-inventory/fleet.json")
    data = {h["name"]: h for h in json.loads(record.read_text())["hosts"]}
    for name, host in hosts.items():
        assert data[name]["vg_free"] == vg_free(host), name  # as `vgs` says on that host
    assert data["kvm1"]["vg_free"] == SEEN["kvm1 free before"] - SIZE_BYTES  # mv1's LV
    assert data["kvm2"]["vg_free"] == SEEN["kvm2 free before"]
    # 1 GiB of memory: kvm1 (1.5 GiB, 512 MiB committed to mv1) has no room for it, kvm2 has
    t0 = time.monotonic()
    fits = kvmops("fleet", "fits", "--fleet", str(inv), "--memory", "1g", "--vcpus", "1", "--disk", SIZE,
                  "--vlan", str(VLAN), "--reserve", "128m", journal=tmp_path / "journal")
    TIMES["fleet fits"] = time.monotonic() - t0
    print(fits.stdout, fits.stderr)
    assert fits.returncode == 0, fits.stderr
    assert "FITS     kvm2" in fits.stdout and "no       kvm1: memory:" in fits.stdout
    assert fits.stdout.rstrip().endswith("best: kvm2")
    DONE.add("fleet")


# ----------------------------------------------------------------- 3. the move
def move(labs: dict[str, LabState], key: str, confirm: str | None = None, *, ok: bool = True,
         **params: object) -> RunRecord:
    return run(labs, "guest-move", "kvm1", key, confirm, ok=ok, guest=GUEST, target=str(labs["kvm2"].site),
               boot_seconds=BOOT_SECONDS, **params)


def source_untouched(kvm1: Host, kvm2: Host) -> None:
    """The guest as it was on kvm1 (defined, shut off, no snapshot left), nothing of it defined on kvm2."""
    assert guests(kvm1).get(GUEST) == "shut off"
    assert [n for n, r in lvs(kvm1).items() if r["origin"]] == [], "a snapshot of the move is left"
    assert GUEST not in guests(kvm2)


def test_04_a_move_interrupted_in_the_copy_is_rerun_without_a_second_copy(
        labs: dict[str, LabState], hosts: dict[str, Host], fault: pytest.MonkeyPatch) -> None:
    need("create")
    kvm1, kvm2 = hosts["kvm1"], hosts["kvm2"]
    lv = kvm1.site.guest_lv(GUEST)
    free0 = vg_free(kvm2)
    fault.setenv(faults.FAULT_MATCH_ENV, rf"^{re.escape(kvm1.site.name)}\$ dd if=")  # the copy's stream, on the source
    fault.setenv(faults.FAULT_AT_ENV, "1")
    rec = move(labs, "guest-move (fault in the copy)", GUEST, ok=False)
    assert "injected fault" in (rec.error or ""), rec.error
    assert set(lvs(kvm2)) == {lv} and gm.COPYING in tags(kvm2, lv), lvs(kvm2)  # one LV, marked incomplete
    assert vg_free(kvm2) == free0 - SIZE_BYTES
    source_untouched(kvm1, kvm2)

    fault.setenv(faults.FAULT_MATCH_ENV, r"virsh define")  # re-run: the copy completes, the define fails
    rec = move(labs, "guest-move (re-run, fault at the define)", GUEST, ok=False)
    assert "injected fault" in (rec.error or ""), rec.error
    assert set(lvs(kvm2)) == {lv} and vg_free(kvm2) == free0 - SIZE_BYTES, "a second copy was made"
    assert gm.COPIED in tags(kvm2, lv) and gm.COPYING not in tags(kvm2, lv)
    digest = sha256(kvm2, f"/dev/{kvm2.site.vg}/{lv}")
    assert digest == sha256(kvm1, f"/dev/{kvm1.site.vg}/{lv}") == SEEN["source sha256"]
    source_untouched(kvm1, kvm2)
    DONE.add("copied")


def test_05_the_move_is_refused_without_its_confirmation(labs: dict[str, LabState], hosts: dict[str, Host]) -> None:
    need("copied")
    rec = move(labs, "guest-move (no confirmation)", ok=False)
    assert "confirm" in (rec.error or "").lower(), rec.error
    source_untouched(hosts["kvm1"], hosts["kvm2"])
    DONE.add("refused")


def test_06_the_guest_boots_on_kvm2_and_only_then_leaves_kvm1(labs: dict[str, LabState],
                                                               hosts: dict[str, Host]) -> None:
    need("refused")
    kvm1, kvm2 = hosts["kvm1"], hosts["kvm2"]
    lv = kvm1.site.guest_lv(GUEST)
    move(labs, "guest-move (boot on kvm2)", GUEST)
    assert guests(kvm2)[GUEST] == "running"
    verdict = console_verdict(kvm2, GUEST)
    print(f"mv1 on kvm2: {verdict.message}")
    assert verdict.booted and verdict.stage == boot.LOGIN and "kvmops-guest login:" in verdict.evidence
    assert f"/dev/{kvm2.site.vg}/{lv}" in sh(kvm2, "virsh", "domblklist", GUEST)
    assert gm.BOOTED in tags(kvm2, lv)
    assert GUEST not in guests(kvm1)
    assert macs_of(kvm2, GUEST) == SEEN["source macs"]  # the moved guest keeps its MAC (and DHCP reservation)
    kept = f"{kvm1.site.xml_dir.rstrip('/')}/{GUEST}.xml.undefined"
    assert kvm1.run(read("test", "-f", kept, ok=(0, 1))).returncode == 0
    assert lv in lvs(kvm1) and sha256(kvm1, f"/dev/{kvm1.site.vg}/{lv}") == SEEN["source sha256"]  # kept, intact
    DONE.add("moved")


def test_07_the_source_lv_is_removed_only_with_the_second_confirmation(labs: dict[str, LabState],
                                                                        hosts: dict[str, Host]) -> None:
    need("moved")
    kvm1 = hosts["kvm1"]
    lv = kvm1.site.guest_lv(GUEST)
    rec = move(labs, "guest-move (remove source, unconfirmed)", ok=False, remove_source_disks=True)
    assert "confirm" in (rec.error or "").lower(), rec.error
    assert lv in lvs(kvm1)
    move(labs, "guest-move (remove source)", remove_source_disks=True, confirm_disks=f"{kvm1.site.vg}/{lv}")
    assert lv not in lvs(kvm1)
    assert guests(hosts["kvm2"])[GUEST] == "running"
    DONE.add("source removed")


# ----------------------------------------------------------------- 4. backup and restore
def place(labs: dict[str, LabState]) -> str:
    return f"{labs['kvm1'].site}:{PLACE_DIR}"  # a folder on kvm1, named by its site file


def test_08_lv_backup_of_the_guest_on_kvm2_to_a_folder_on_kvm1(labs: dict[str, LabState],
                                                                hosts: dict[str, Host]) -> None:
    need("moved")
    kvm1, kvm2 = hosts["kvm1"], hosts["kvm2"]
    lv = kvm2.site.guest_lv(GUEST)
    run(labs, "guest-lifecycle", "kvm2", "guest-lifecycle destroy (kvm2)", confirm=GUEST, guest=GUEST,
        action="destroy")
    SEEN["moved sha256"] = sha256(kvm2, f"/dev/{kvm2.site.vg}/{lv}")
    run(labs, "lv-backup", "kvm2", "lv-backup", guest=GUEST, place=place(labs), keep=2)
    (folder,) = sh(kvm1, "find", f"{PLACE_DIR}/{GUEST}", "-mindepth", "1", "-maxdepth", "1", "-type", "d").split()
    manifest = json.loads(sh(kvm1, "cat", f"{folder}/manifest.json"))
    print(json.dumps(manifest)[:2000])
    (disk,) = manifest["disks"]
    assert disk["sha256"] == SEEN["moved sha256"], "the backup is not of the guest's disk"
    files = sh(kvm1, "ls", folder).split()
    data = next(f for f in files if f.startswith(lv + ".raw."))
    assert sha256(kvm1, f"{folder}/{data}") == disk["compressed_sha256"]
    assert [n for n, r in lvs(kvm2).items() if r["origin"]] == [], "a snapshot of the backup is left"
    SEEN["manifest"] = manifest
    DONE.add("backup")


def test_09_the_guest_lost_on_kvm2_is_restored_there_into_its_own_lv(labs: dict[str, LabState],
                                                                      hosts: dict[str, Host]) -> None:
    """Disaster recovery: mv1's definition and LV are gone from kvm2; lv-backup-restore under its
    own name restores its LV from the folder on kvm1 (not defined yet: a later run does that)."""
    need("backup")
    kvm2 = hosts["kvm2"]
    lv = kvm2.site.guest_lv(GUEST)
    _clear(kvm2)  # the guest lost: destroyed, undefined, its LV removed
    assert GUEST not in guests(kvm2) and lv not in lvs(kvm2)
    run(labs, "lv-backup-restore", "kvm2", "lv-backup-restore", guest=GUEST, place=place(labs))
    assert sha256(kvm2, f"/dev/{kvm2.site.vg}/{lv}") == SEEN["manifest"]["disks"][0]["sha256"] == \
        SEEN["moved sha256"]
    assert rs.RESTORED in tags(kvm2, lv) and GUEST not in guests(kvm2)
    DONE.add("restored")


def test_10_the_restored_guest_keeps_its_mac_and_boots(labs: dict[str, LabState], hosts: dict[str, Host]) -> None:
    """The same restore again with define and start: no second LV; the guest is defined with the
    MAC it had (restored under its own name, its DHCP reservation still applies: issue 24) and
    boots to its login prompt."""
    need("restored")
    kvm2 = hosts["kvm2"]
    free = vg_free(kvm2)
    run(labs, "lv-backup-restore", "kvm2", "lv-backup-restore (define, start, boot)", guest=GUEST, place=place(labs),
        define=True, start=True, boot_seconds=BOOT_SECONDS)
    assert vg_free(kvm2) == free, "the re-run made another LV"
    assert guests(kvm2)[GUEST] == "running"
    verdict = console_verdict(kvm2, GUEST)
    print(f"mv1 restored on kvm2: {verdict.message}")
    assert verdict.booted and verdict.stage == boot.LOGIN, verdict.message
    assert f"/dev/{kvm2.site.vg}/{kvm2.site.guest_lv(GUEST)}" in sh(kvm2, "virsh", "domblklist", GUEST)
    assert macs_of(kvm2, GUEST) == SEEN["source macs"]  # the MAC it had on kvm1, before the move


# ----------------------------------------------------------------- 5. the lab powered off
def test_11_lab_down_with_a_guest_running_powers_kvm2_off_within_30_s(
        labs: dict[str, LabState], hosts: dict[str, Host], second_lab_started_here: bool) -> None:
    """``kvmops lab down --name kvm2`` while mv1 (restored) runs there (it answers no ACPI): the guest is
    destroyed first and the lab powers off by itself, without the kill its 30 s budget ends in."""
    need("moved")
    if not second_lab_started_here:
        pytest.skip("kvm2 was running before this session: it is left running")
    assert guests(hosts["kvm2"]).get(GUEST) == "running"
    hosts["kvm2"].close()
    DOWN.add("kvm2")
    t0 = time.monotonic()
    got = subprocess.run([sys.executable, "-m", "kvmops.cli.main", "lab", "down", "--name", "kvm2"],
                         capture_output=True, text=True, timeout=120, check=False)
    TIMES["lab down kvm2 (mv1 running)"] = time.monotonic() - t0
    print(got.stdout, got.stderr)
    assert got.returncode == 0, got.stderr
    assert f"destroyed the lab's running guest(s) {GUEST}" in got.stdout + got.stderr
    assert got.stdout.strip().splitlines()[-1] == "lab VM powered off", got.stdout  # not "killed (...)"
    assert not labs["kvm2"].pid or not procs.alive(labs["kvm2"].pid)  # gone (a zombie counts: QEMU daemonized,
    # it is init's child, and this machine's init reaps late)
