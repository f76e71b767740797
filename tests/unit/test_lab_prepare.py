"""First-boot plans of the lab: VG rl_build and the guest image copy, idempotent."""

from __future__ import annotations

from kvmops.lvm.facts import VG
from kvmops_lab.prepare import GUEST_IMAGE_DEVICE, GUEST_IMAGE_FILE, PV_DEVICE, image_plan, vg_plan


def test_vg_is_created_on_the_pv_disk_when_missing() -> None:
    plan = vg_plan((), "rl_build")
    assert [s.cmd.argv for s in plan.steps if s.cmd] == [("vgcreate", "rl_build", PV_DEVICE)]
    assert plan.steps[0].mutates and plan.targets == []


def test_existing_vg_is_a_noop() -> None:
    vg = VG("rl_build", 20 << 30, 20 << 30, 4 << 20, 0)
    plan = vg_plan((VG("other", 1, 1, 1, 0), vg), "rl_build")
    assert plan.empty and "exists already" in plan.render()


def test_image_copy_only_when_attached_and_not_copied() -> None:
    assert image_plan(False, False).empty
    assert image_plan(True, True).empty
    plan = image_plan(True, False)
    argvs = [s.cmd.argv for s in plan.steps if s.cmd]
    assert argvs[-1] == ("cp", "--sparse=always", GUEST_IMAGE_DEVICE, GUEST_IMAGE_FILE)


def test_cloud_image_is_copied_to_its_own_file() -> None:
    from kvmops_lab.prepare import CLOUD_IMAGE_DEVICE, CLOUD_IMAGE_FILE, IMAGES

    assert (CLOUD_IMAGE_DEVICE, CLOUD_IMAGE_FILE) in IMAGES
    assert CLOUD_IMAGE_FILE == "/var/lib/kvmops/images/cloud.raw"
    plan = image_plan(True, False, CLOUD_IMAGE_DEVICE, CLOUD_IMAGE_FILE)
    assert [s.cmd.argv for s in plan.steps if s.cmd][-1] == ("cp", "--sparse=always", CLOUD_IMAGE_DEVICE,
                                                              CLOUD_IMAGE_FILE)
    assert "cloud.raw exists already" in image_plan(True, True, CLOUD_IMAGE_DEVICE, CLOUD_IMAGE_FILE).render()
