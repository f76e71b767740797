"""The storage runbooks for real (apply) against a scratch VG on a loop device.

LVM runs with activation disabled where the kernel has no device-mapper: create, resize and
remove work; snapshots cannot (their success path is the lab tier's), so here the snapshot
runbook proves the failure path with a real LVM error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.runbook.execute import run_runbook
from kvmops.runbook.journal import RunRecord
from tests.conftest import need_tools
from tests.support.loop import has_device_mapper, scratch_vg

pytestmark = pytest.mark.integration
VG = "rbtest"
M = 1024**2

SITE = f"""[host]
name = "scratch"

[storage]
vg = "{VG}"
lv_prefix = "vm"
snapshot_size = "16m"

[libvirt]
uri = "test://{{site_dir}}/node.xml"
domain_type = "qemu"

[network]
uplink = "ens802f1"
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    need_tools("lvm", "losetup")
    (tmp_path / "node.xml").write_text("<node/>\n")
    (tmp_path / "site.toml").write_text(SITE)
    with scratch_vg(tmp_path, VG, "256M"):
        yield tmp_path / "site.toml"


def lvs() -> dict[str, int]:
    out = subprocess.run(["lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_name,lv_size", VG],
                         capture_output=True, text=True, check=True).stdout
    return {n: int(s) for n, s in (ln.split() for ln in out.splitlines() if ln.strip())}


def run(site: Path, journal: Path, name: str, **params: object) -> RunRecord:
    confirm = params.pop("confirm", None)
    return run_runbook(name, params, site=str(site), apply=True, confirm=confirm,  # type: ignore[arg-type]
                       journal_dir=journal)


def test_create_grow_refuse_shrink_remove(site: Path, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    rec = run(site, journal, "lv-create", guest="t1", size="64m")
    assert rec.status == "ok", rec.error
    assert lvs() == {"vmt1": 64 * M}
    assert [(c["command"].split()[0], c["returncode"], c["executed"]) for c in rec.commands if c["mutates"]] \
        == [("lvcreate", 0, True)]

    rec = run(site, journal, "lv-resize", guest="t1", size="96m")
    assert rec.status == "ok", rec.error
    assert lvs() == {"vmt1": 96 * M}

    # shrinking without confirm: `kvmops run` exits 1 naming the step; nothing changed
    env = {**os.environ, "KVMOPS_JOURNAL": str(journal)}
    cli = subprocess.run([sys.executable, "-m", "kvmops.cli.main", "run", "lv-resize", "--site", str(site),
                          "--apply", "-q", "-p", "guest", "t1", "-p", "size", "32m"],
                         capture_output=True, text=True, env=env, timeout=180)
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "FAILED at step 'Resize the LV'" in cli.stderr and "confirm='rbtest/vmt1'" in cli.stderr
    assert lvs() == {"vmt1": 96 * M}

    rec = run(site, journal, "lv-remove", lv="vmt1")
    assert rec.status == "failed" and "ConfirmationRequired" in (rec.error or "")
    assert lvs() == {"vmt1": 96 * M}
    rec = run(site, journal, "lv-remove", lv="vmt1", confirm=f"{VG}/vmt1")
    assert rec.status == "ok", rec.error
    assert lvs() == {}
    assert [c["command"] for c in rec.commands if c["mutates"]] == [f"lvremove {VG}/vmt1 <<< 'y\\n'"]


def test_inventory_reads_the_real_vg(site: Path, tmp_path: Path) -> None:
    subprocess.run(["lvcreate", "-q", "--name", "vmx", "--size", "32m", VG], check=True, capture_output=True)
    rec = run(site, tmp_path / "journal", "inventory", bridges=False)
    assert rec.status == "ok", rec.error
    text = Path(rec.notebook).read_text()
    assert f"{VG}/vmx" in text and "(no guest)" in text


@pytest.mark.skipif(has_device_mapper(), reason="this kernel has device-mapper: snapshots work (lab tier)")
def test_snapshot_failure_is_recorded_with_the_real_lvm_error(site: Path, tmp_path: Path) -> None:
    subprocess.run(["lvcreate", "-q", "--name", "vmsnap", "--size", "32m", VG], check=True, capture_output=True)
    rec = run(site, tmp_path / "journal", "lv-snapshot", guest="snap")
    assert rec.status == "failed"
    assert rec.failed_step == "Take the snapshot"
    failed = [c for c in rec.commands if c["command"].startswith("lvcreate --snapshot")]
    assert len(failed) == 1 and failed[0]["executed"] and failed[0]["returncode"] not in (0, None)
    assert "device-mapper" in (rec.error or "")
    assert lvs() == {"vmsnap": 32 * M}
