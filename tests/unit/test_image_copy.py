"""Copy plans: fit, running-guest guard, destructive target, method choice, progress."""

from __future__ import annotations

import pytest

from kvmops.errors import InvalidInput, SafetyError
from kvmops.images.copy import compare_cmd, copy_plan, copy_to_device
from kvmops.images.probe import ImageInfo
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.site import load_site
from tests.support.facts import domain, host_facts

GiB = 1 << 30
SITE = load_site(None)
STATE = LvmState(
    VG("rl_build", 100 * GiB, 50 * GiB, 4 << 20, 3),
    (LV("vmtest1", "rl_build", "-wi-a-----", 10 * GiB, "", None, None),
     LV("vmsmall", "rl_build", "-wi-a-----", 1 * GiB, "", None, None),
     LV("root", "rl_build", "-wi-ao----", 100 * GiB, "", None, None)),
)
FACTS = host_facts(STATE)
QCOW = ImageInfo("/var/lib/images/Rocky-9.qcow2", "qcow2", 10 * GiB)
RAW = ImageInfo("/var/lib/images/rocky,9.raw", "raw", 2 * GiB)


def test_qcow2_copy_plan_is_destructive_converts_and_verifies() -> None:
    plan = copy_plan(FACTS, "vmtest1", QCOW)
    assert plan.targets == ["rl_build/vmtest1"]
    convert, verify = plan.steps
    assert convert.cmd is not None and convert.cmd.mutates
    assert convert.cmd.argv == ("qemu-img", "convert", "-n", "-p", "-t", "none", "-W", "-f", "qcow2", "-O", "raw",
                                QCOW.path, "/dev/rl_build/vmtest1")  # -W: out of order onto the LV, verified after
    assert verify.cmd is not None and not verify.cmd.mutates
    assert "size=10737418240" in verify.cmd.argv[-1]
    assert not plan.notes  # same size: nothing to grow


def test_larger_lv_notes_growing_and_compare_doubles_commas() -> None:
    plan = copy_plan(FACTS, "vmtest1", RAW, method="dd")
    assert plan.steps[0].cmd is not None and plan.steps[0].cmd.argv[0] == "dd"
    assert "oflag=direct" in plan.steps[0].cmd.argv
    assert any("grow" in n for n in plan.notes)
    assert "file.filename=/var/lib/images/rocky,,9.raw" in compare_cmd(RAW, "/dev/x").argv[4]


def test_image_larger_than_lv_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"virtual size.*vmsmall has only 1"):
        copy_plan(FACTS, "vmsmall", QCOW)


def test_running_guest_and_host_lv_refused() -> None:
    with pytest.raises(SafetyError, match="running guest"):
        copy_plan(host_facts(STATE, domains=[domain("t1", "/dev/rl_build/vmtest1", active=True)]), "vmtest1", QCOW)
    with pytest.raises(SafetyError, match="host LV"):
        copy_plan(FACTS, "root", QCOW)


def test_dd_of_qcow2_and_unknown_method_refused() -> None:
    with pytest.raises(InvalidInput, match="raw images only"):
        copy_plan(FACTS, "vmtest1", QCOW, method="dd")
    with pytest.raises(InvalidInput, match="method"):
        copy_to_device(RAW, "/dev/loop0", 4 * GiB, target="x", method="cp")


def test_without_verify_one_step() -> None:
    assert len(copy_plan(FACTS, "vmtest1", QCOW, verify=False).steps) == 1


def test_auto_is_qemu_img_with_out_of_order_writes_for_raw_and_qcow2() -> None:
    for image in (RAW, QCOW):
        write = copy_plan(FACTS, "vmtest1", image).steps[0]
        assert write.cmd is not None and write.cmd.argv[:2] == ("qemu-img", "convert") and "-W" in write.cmd.argv
        assert "bench/image_copy.py" in write.reason
