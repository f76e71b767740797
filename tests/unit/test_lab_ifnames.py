"""The predictable-names variant of the lab's cloud image (issue 24): only net.ifnames=0 goes."""

from __future__ import annotations

from kvmops.images.nmprofiles import KERNEL, PREDICTABLE, naming
from kvmops_lab.cloud_recipe import CloudRecipe, grub_cfg
from kvmops_lab.ifnames import without_ifnames


def test_the_kernel_lines_lose_net_ifnames_and_nothing_else() -> None:
    recipe = CloudRecipe()
    default, cfg = recipe.files["/etc/default/grub"], grub_cfg(recipe.fs_uuid, "6.1.0-50-amd64")
    assert naming([default]) == KERNEL  # what the tweak reads: the image says eth0
    for text in (default, cfg):
        out = without_ifnames(text)
        assert "net.ifnames" not in out and "console=ttyS0,115200n8 no_timer_check" in out
        assert out.replace(" ", "") == text.replace(" net.ifnames=0", "").replace(" ", "")
        assert without_ifnames(out) == out
    assert naming([without_ifnames(default)]) == PREDICTABLE
    assert without_ifnames("x net.ifnames=01 y\n") == "x net.ifnames=01 y\n"
