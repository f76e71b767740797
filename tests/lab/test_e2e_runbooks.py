"""End-to-end: the runbooks applied to the lab VM, each checked against the lab's REAL state.

The lifecycle of one guest, in order (each test needs the ones before it; the first failure
skips the rest): host-network (the VLAN bridge), guest-create (LV, image copy, offline
tweaks, XML, define, start, autostart, console), guest-lifecycle destroy, lv-snapshot, a
change to the disk (image-tweak adds an SSH key), lv-restore (merge: the key is gone),
guest-resize (LV and ext4 root grown offline), guest-inspect (read-only, nothing left mapped) and
guest-remove (undefine, LVs removed). Every run goes through
:func:`kvmops.runbook.execute.run_runbook` with ``apply=True`` (as ``kvmops run --apply``) and
lands in the journal (``$KVMOPS_JOURNAL`` or ``journal/``; ``kvmops docs --from-journal``
publishes the newest successful lab runs). The checks read the lab over SSH themselves
(``ip``, ``nmcli``, ``lvs``, ``virsh``, a read-only ``kpartx``/``mount``), never the runbook's
output.

Opt-in with the whole lab tier (``KVMOPS_LAB=1``; a running lab is reused). Timings of every
run are printed at the end of the module.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

from kvmops.cmd import change, read
from kvmops.facts import read_facts
from kvmops.host import Host, connect
from kvmops.hostfacts import Wanted
from kvmops.net import ops as net_ops
from kvmops.runbook.execute import run_runbook
from kvmops.runbook.journal import RunRecord
from kvmops.site import Site
from kvmops_lab.guest_image import BOOT_BANNER, IN_LAB_FILE
from kvmops_lab.state import LabState
from tests.support.console import console_verdict
from tests.support.run import notebook_text, run_plan

pytestmark = pytest.mark.lab

GUEST = "e2e1"
VLAN = 2368
ADDRESS = "10.5.68.50"
SIZE = "1g"  # the guest image is 64 MiB
GROWN = "1280m"
# a public key only (its private half was thrown away when it was made)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIk7Eo6Dhzc+ijrJ1PALIOmVLaNHauy9kyikqqAc/tva e2e-marker"
# The lab runs its guests with KVM when that works inside it (kvmops_lab.guest_accel; the site's
# domain type is then kvm) and the guest image has a tiny initramfs: its login prompt comes
# 36-105 s after `virsh start` (tests/lab/test_nested_guest.py proves that on its own).
# guest-create verifies the boot by a login prompt (kvmops.guests.boot) and fails without one,
# so it is given this long (KVMOPS_E2E_BOOT_SECONDS on a slower machine).
BOOT_BUDGET = float(os.environ.get("KVMOPS_E2E_BOOT_SECONDS", "240"))

TIMES: dict[str, float] = {}
DONE: set[str] = set()
SITE_FILE: list[str] = []
CREATED: list[RunRecord] = []


# ----------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def host(lab_site: Site, lab_state: LabState) -> Iterator[Host]:
    """A Host of the lab (apply mode) for the checks; the guest cleared before and after."""
    SITE_FILE.append(str(lab_state.site))
    t0 = time.monotonic()
    h = connect(lab_site, apply=True)
    try:
        _clear(h)
        yield h
    finally:
        _clear(h)
        h.close()
        TIMES["module (incl. cleanup)"] = time.monotonic() - t0
        print("\ne2e timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMES.items()))


def sh(host: Host, *argv: str, ok: tuple[int, ...] = (0,)) -> str:
    """Run a read-only command in the lab; its stdout."""
    return host.run(read(*argv, ok=ok)).stdout


def _clear(host: Host) -> None:
    """Whatever an earlier (failed) run left of the test guest, its LVs and its bridge."""
    vg = host.site.vg
    lv = host.site.guest_lv(GUEST)
    mapper = f"/dev/mapper/{vg.replace('-', '--')}-{lv.replace('-', '--')}"
    for mnt in sh(host, "findmnt", "-rn", "-o", "TARGET", ok=(0, 1)).split():
        if mnt.startswith(("/run/kvmops/", "/mnt/e2e")):
            host.run(change("umount", "--recursive", mnt), check=False)
    host.run(change("kpartx", "-d", "-p", "p", mapper), check=False)
    host.run(change("virsh", "destroy", GUEST), check=False)
    host.run(change("virsh", "undefine", GUEST), check=False)
    for name in _lvs(host):
        if name.startswith(lv):
            host.run(change("lvremove", f"{vg}/{name}", stdin="y\n"), check=False)
    xml_dir = host.site.xml_dir.rstrip("/")
    host.run(change("rm", "-f", f"{xml_dir}/{GUEST}.xml", f"{xml_dir}/{GUEST}.xml.undefined",
                    f"{xml_dir}/{GUEST}-seed.iso"), check=False)
    host.run(change("rm", "-rf", f"/run/kvmops/lock/{GUEST}"), check=False)
    bridge = host.site.network(VLAN).bridge
    run_plan(host, net_ops.remove_bridge(read_facts(host, Wanted(net=True)), bridge), bridge, progress=print)


def _lvs(host: Host) -> dict[str, dict[str, str]]:
    out = sh(host, "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
             "lv_name,lv_size,origin,lv_attr", host.site.vg)
    return {r["lv_name"]: r for r in json.loads(out)["report"][0]["lv"]}


def need(*steps: str) -> None:
    missing = [s for s in steps if s not in DONE]
    if missing:
        pytest.skip(f"needs the earlier step(s) {', '.join(missing)} to have passed")


def run_timed(name: str, confirm: str | None = None, **params: object) -> RunRecord:
    """``kvmops run NAME -p ... --site LAB --apply [--confirm X]``, timed; its record, ok or not."""
    t0 = time.monotonic()
    rec = run_runbook(name, dict(params), site=SITE_FILE[-1], apply=True, confirm=confirm, progress=print)
    took = time.monotonic() - t0
    key = name if name not in TIMES else f"{name} ({params.get('action') or len(TIMES)})"
    TIMES[key] = took
    print(f"{rec.id}: {rec.status} in {took:.1f}s")
    return rec


def run(name: str, confirm: str | None = None, **params: object) -> RunRecord:
    """:func:`run_timed`; fails with the step."""
    rec = run_timed(name, confirm, **params)
    assert rec.ok, f"{name} failed at {rec.failed_step!r}: {rec.error} (journal {rec.id})"
    return rec


def cell_seconds(rec: RunRecord, *markers: str) -> float:
    """Seconds the notebook's code cells took whose source contains any of ``markers``."""
    nb = json.loads(rec.notebook_path.read_text())
    total = 0.0
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and any(m in "".join(cell["source"]) for m in markers):
            total += float(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0)
    return total


def read_guest_file(host: Host, path: str) -> tuple[str | None, int]:
    """A file of the guest's root (None if missing) and the root fs's block count, read-only.

    ``kpartx -a -r`` maps the LV's partitions read-only; ``mount -o ro,norecovery`` (a root
    forced off has a dirty journal that a read-only device cannot replay); always undone.
    """
    vg, lv = host.site.vg, host.site.guest_lv(GUEST)
    mapper = f"/dev/mapper/{vg.replace('-', '--')}-{lv.replace('-', '--')}"
    mnt = "/mnt/e2e-check"
    host.run(change("kpartx", "-a", "-r", "-p", "p", mapper))
    try:
        host.run(change("mkdir", "-p", mnt))
        host.run(change("mount", "-o", "ro,norecovery", f"{mapper}p1", mnt))
        try:
            res = host.run(read("cat", f"{mnt}/{path.lstrip('/')}", ok=(0, 1)))
            blocks = int(sh(host, "stat", "-f", "-c", "%b", mnt).strip())
            return (res.stdout if res.returncode == 0 else None), blocks
        finally:
            host.run(change("umount", mnt))
    finally:
        host.run(change("kpartx", "-d", "-p", "p", mapper))


def domain_state(host: Host) -> str:
    return sh(host, "virsh", "domstate", GUEST).strip()


def dominfo(host: Host) -> dict[str, str]:
    pairs = (ln.split(":", 1) for ln in sh(host, "virsh", "dominfo", GUEST).splitlines() if ":" in ln)
    return {k.strip(): v.strip() for k, v in pairs}


def nothing_mapped(host: Host) -> list[str]:
    """Device-mapper nodes and mounts of the guest's LV that are still there."""
    lv = host.site.guest_lv(GUEST)
    maps = [m for m in sh(host, "dmsetup", "ls").split() if lv in m and m.endswith(("p1", "p2", "p3"))]
    mounts = [m for m in sh(host, "findmnt", "-rn", "-o", "SOURCE", ok=(0, 1)).split() if lv in m]
    return maps + mounts


# ----------------------------------------------------------------- the lifecycle
def test_01_host_network_makes_the_vlan_bridge(host: Host) -> None:
    run("host-network", vlan=VLAN, stp="off")
    bridge, port = host.site.network(VLAN).bridge, f"{host.site.uplink}.{VLAN}"
    link = json.loads(sh(host, "ip", "-d", "-j", "link", "show", bridge))[0]
    assert link["linkinfo"]["info_kind"] == "bridge"
    assert link["linkinfo"]["info_data"]["ageing_time"] == 0
    assert link["operstate"] in ("UP", "UNKNOWN", "DOWN")
    vlan = json.loads(sh(host, "ip", "-d", "-j", "link", "show", port))[0]
    assert vlan["linkinfo"]["info_kind"] == "vlan" and vlan["linkinfo"]["info_data"]["id"] == VLAN
    assert vlan["link"] == host.site.uplink and vlan["master"] == bridge
    addrs = json.loads(sh(host, "ip", "-j", "address", "show", bridge))[0]["addr_info"]
    assert [a for a in addrs if a["family"] == "inet"] == []
    assert [a for a in addrs if a["family"] == "inet6" and a.get("scope") == "global"] == []
    profiles = sh(host, "nmcli", "-t", "-f", "NAME,TYPE,DEVICE", "connection", "show", "--active")
    assert f":bridge:{bridge}" in profiles and f":vlan:{port}" in profiles
    DONE.add("network")


def test_02_guest_create_defines_and_boots_the_guest(host: Host) -> None:
    need("network")
    rec = run("guest-create", guest=GUEST, vlans=str(VLAN), memory="512m", vcpus=1, size=SIZE,
              image=IN_LAB_FILE, setup="tweaks", sudo=False, address=ADDRESS, console_seconds=BOOT_BUDGET)
    vg, lv = host.site.vg, host.site.guest_lv(GUEST)
    lvs = _lvs(host)
    assert int(lvs[lv]["lv_size"]) == 1024**3
    image_bytes = int(sh(host, "stat", "-c", "%s", IN_LAB_FILE).strip())
    assert image_bytes < 1024**3
    # the root fs was tweaked after the copy: the boot sector and partition table must be the image's
    mbr = host.run(read("cmp", "-n", "512", IN_LAB_FILE, f"/dev/{vg}/{lv}", ok=(0, 1)))
    assert mbr.returncode == 0, "the image's boot sector is not on the LV"
    xml_file = f"{host.site.xml_dir.rstrip('/')}/{GUEST}.xml"
    xml = sh(host, "cat", xml_file)
    assert f"/dev/{vg}/{lv}" in xml and f"virbr1.{VLAN}" in xml
    assert f"type='{host.site.domain_type}'" in xml.replace('"', "'")  # kvm when KVM works in the lab
    assert f"<name>{GUEST}</name>" in sh(host, "virsh", "dumpxml", GUEST)
    assert domain_state(host) == "running"
    assert dominfo(host)["Autostart"] == "enable"
    assert f"guest {GUEST} booted: login prompt after" in notebook_text(rec)  # the start's boot wait
    total = TIMES["guest-create"]
    copy = cell_seconds(rec, "Create the LV and copy the image")
    console = cell_seconds(rec, "Verify the guest")
    TIMES["guest-create without copy and console"] = total - copy - console
    TIMES["guest-create image copy"] = copy
    TIMES["guest-create console wait"] = console
    DONE.add("create")
    CREATED.append(rec)


def test_02b_the_guest_boots_to_a_login_prompt(host: Host) -> None:
    """A separate test: a boot that outlasts the budget fails here, the disk tests still run."""
    need("create")
    assert BOOT_BANNER in notebook_text(CREATED[-1]), \
        f"the runbook did not show the guest's boot banner within {BOOT_BUDGET:g} s"
    verdict = console_verdict(host, GUEST, 20.0)
    assert verdict.booted, f"the guest's serial console does not answer with a login prompt: {verdict}"


def test_03_shut_off_then_snapshot(host: Host) -> None:
    need("create")
    run("guest-lifecycle", confirm=GUEST, guest=GUEST, action="destroy")
    assert domain_state(host) == "shut off"
    run("lv-snapshot", guest=GUEST)
    lv = host.site.guest_lv(GUEST)
    snaps = [n for n, r in _lvs(host).items() if r["origin"] == lv]
    assert len(snaps) == 1 and snaps[0].startswith(f"{lv}-"), snaps
    assert _lvs(host)[snaps[0]]["lv_attr"].startswith("s")
    DONE.add("snapshot")


def test_04_change_the_disk_then_restore_the_snapshot(host: Host) -> None:
    need("snapshot")
    keys = "/home/centos/.ssh/authorized_keys"
    assert read_guest_file(host, keys)[0] is None, "the image has authorized_keys already"
    run("image-tweak", guest=GUEST, keys=KEY, sudo=False, console=False)
    changed, _ = read_guest_file(host, keys)
    assert changed is not None and KEY in changed, "image-tweak did not write the key"
    lv = host.site.guest_lv(GUEST)
    (snap,) = [n for n, r in _lvs(host).items() if r["origin"] == lv]
    run("lv-restore", confirm=f"{host.site.vg}/{snap}", guest=GUEST, interval=1)  # the snapshot rolled back to
    assert [n for n, r in _lvs(host).items() if r["origin"] == lv] == [], "the snapshot is still there"
    assert _lvs(host)[lv]["lv_attr"][0] == "-", "the LV is still merging"
    assert read_guest_file(host, keys)[0] is None, "the change survived the rollback"
    assert read_guest_file(host, "/etc/hostname")[0] == "kvmops-guest\n"
    DONE.add("restore")


def test_05_guest_resize_grows_lv_and_ext4(host: Host) -> None:
    need("restore")
    _, blocks_before = read_guest_file(host, "/etc/hostname")
    run("guest-resize", guest=GUEST, size=GROWN)
    lv = host.site.guest_lv(GUEST)
    assert int(_lvs(host)[lv]["lv_size"]) == 1280 * 1024**2
    _, blocks_after = read_guest_file(host, "/etc/hostname")
    assert blocks_after > blocks_before * 2, (blocks_before, blocks_after)  # 64 MiB image -> 1.25 GiB
    assert nothing_mapped(host) == []
    DONE.add("resize")


def test_06_guest_inspect_reads_and_leaves_nothing_mapped(host: Host) -> None:
    need("create")
    rec = run("guest-inspect", guest=GUEST)
    text = notebook_text(rec)
    assert "ID=kvmops-guest" in text and "LABEL=root / ext4" in text, "os-release / fstab are not shown"
    assert "rl_build-vme2e1p1  1.25 GiB  ext4" in text, "the grown root partition is not shown"
    assert nothing_mapped(host) == []
    assert [m for m in sh(host, "findmnt", "-rn", "-o", "TARGET", ok=(0, 1)).split()
            if m.startswith("/run/kvmops/")] == []
    DONE.add("inspect")


def test_07_guest_remove_undefines_and_removes_the_lv(host: Host) -> None:
    need("create")
    vg, lv = host.site.vg, host.site.guest_lv(GUEST)
    run("guest-remove", confirm=GUEST, guest=GUEST, confirm_disks=f"{vg}/{lv}")
    assert GUEST not in sh(host, "virsh", "list", "--all", "--name").split()
    assert [n for n in _lvs(host) if n.startswith(lv)] == []
    xml_dir = host.site.xml_dir.rstrip("/")
    assert host.run(read("test", "-e", f"{xml_dir}/{GUEST}.xml", ok=(0, 1))).returncode == 1
    assert host.run(read("test", "-f", f"{xml_dir}/{GUEST}.xml.undefined", ok=(0, 1))).returncode == 0
    assert nothing_mapped(host) == []
