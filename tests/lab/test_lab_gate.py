"""Lab tier, issue 20: the host holds a stopped guest's disk (its LV mapped with ``kpartx -a``
as the guide's 4.3 leaves it) and every way to start that guest is refused, naming the
mapping: ``kvmops guest start``, the guest-lifecycle runbook and the host-recovery runbook.
After ``kpartx -d`` the same command starts it.

The guest is the small busybox image on a lab LV, defined (not by kvmops) with autostart on,
so host-recovery means to start it. Everything is removed at the end, on every path.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kvmops.cli.main import main
from kvmops.cmd import change, read
from kvmops.host import Host
from kvmops.runbook.execute import run_runbook
from kvmops_lab.prepare import GUEST_IMAGE_FILE
from kvmops_lab.proofguest import domain_xml
from kvmops_lab.state import LabState

pytestmark = pytest.mark.lab

GUEST = "gate1"


@pytest.fixture
def mapped_guest(lab_state: LabState, lab_host: Host) -> Iterator[str]:
    """gate1 defined and shut off, its LV mapped with kpartx; removed afterwards."""
    site = lab_host.site
    lv = site.guest_lv(GUEST)
    dev = f"/dev/{site.vg}/{lv}"
    xml_file = f"/tmp/kvmops-{GUEST}.xml"
    _remove(lab_host, lv, dev, xml_file)
    try:
        lab_host.run(change("lvcreate", "--name", lv, "--size", "1g", "--wipesignatures", "y", "--yes", site.vg))
        lab_host.run(change("qemu-img", "convert", "-n", "-O", "raw", "-f", "raw", GUEST_IMAGE_FILE, dev,
                            timeout=600))
        xml = domain_xml(GUEST, dev, None, None, 256, domain_type=site.domain_type)
        lab_host.run(change("sh", "-c", f"cat > {xml_file}", stdin=xml))
        lab_host.run(change("virsh", "define", xml_file))
        lab_host.run(change("virsh", "autostart", GUEST))
        out = lab_host.run(change("kpartx", "-a", "-v", dev)).stdout  # the guide's 4.3, word for word
        assert "add map" in out, out
        yield dev
    finally:
        _remove(lab_host, lv, dev, xml_file)


def _remove(host: Host, lv: str, dev: str, xml_file: str) -> None:
    host.run(change("virsh", "destroy", GUEST), check=False)
    host.run(change("virsh", "undefine", GUEST), check=False)
    host.run(change("kpartx", "-d", dev), check=False)
    host.run(change("lvremove", f"{host.site.vg}/{lv}", stdin="y\n"), check=False)
    host.run(change("rm", "-f", xml_file), check=False)


def _state(host: Host) -> str:
    return host.run(read("virsh", "domstate", GUEST)).stdout.strip()


def test_every_start_of_a_guest_whose_disk_is_mapped_is_refused(mapped_guest: str, lab_state: LabState,
                                                                 lab_host: Host,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    dev = mapped_guest
    assert lab_host.run(read("lvs", "--noheadings", "-o", "lv_attr", dev)).stdout.strip()[5] == "o"  # open
    code = main(["guest", "start", GUEST, "--site", lab_state.site, "--apply"])
    err = capsys.readouterr().err
    assert code != 0 and "refused by the safety gate" in err and f"kpartx -d {dev}" in err, err
    assert _state(lab_host) == "shut off"

    for runbook, params in (("guest-lifecycle", {"guest": GUEST, "action": "start"}), ("host-recovery", {})):
        rec = run_runbook(runbook, dict(params), site=lab_state.site, apply=True)
        assert rec.status == "failed", (runbook, rec.status)
        assert "start-free" in (rec.error or "") and f"kpartx -d {dev}" in (rec.error or ""), (runbook, rec.error)
        assert _state(lab_host) == "shut off", runbook

    lab_host.run(change("kpartx", "-d", dev))
    code = main(["guest", "start", GUEST, "--site", lab_state.site, "--apply"])
    assert code == 0, capsys.readouterr().err
    assert _state(lab_host) == "running"
