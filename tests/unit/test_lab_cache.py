"""The image cache: reused when complete, a half-built one (no COMPLETE marker) rebuilt."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops_lab import build
from kvmops_lab.guest_image import guest_files
from kvmops_lab.paths import ImagePaths, LabPaths
from kvmops_lab.progress import Phases
from kvmops_lab.recipe import Recipe


def fake_build(img: ImagePaths, recipe: Recipe, say: Phases) -> None:
    """Stands in for debootstrap: the same folder contract, the marker last."""
    img.dir.mkdir(parents=True)
    img.root.write_text("root")
    img.recipe.write_text(recipe.to_json())
    img.marker.write_text("built\n")


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LabPaths:
    monkeypatch.setattr(build, "build_image", fake_build)
    monkeypatch.setattr(build, "check_can_build", lambda: None)
    return LabPaths(tmp_path / "lab")


def test_half_built_cache_is_detected_and_rebuilt(paths: LabPaths) -> None:
    recipe = Recipe()
    img = paths.image(recipe.digest)
    img.dir.mkdir(parents=True)
    (img.dir / "rootfs").mkdir()
    (img.dir / "leftover").write_text("from a build that died")
    said: list[str] = []
    got = build.ensure_image(paths, recipe, Phases(said.append))
    assert got == img and img.complete
    assert not (img.dir / "leftover").exists()
    assert any("half-built" in s and "rebuilding" in s for s in said)


def test_complete_cache_is_reused(paths: LabPaths) -> None:
    recipe = Recipe()
    build.ensure_image(paths, recipe, Phases(lambda s: None))
    paths.image(recipe.digest).root.write_text("kept")
    said: list[str] = []
    build.ensure_image(paths, recipe, Phases(said.append))
    assert paths.image(recipe.digest).root.read_text() == "kept"
    assert any("cached" in s for s in said)


def test_a_new_recipe_builds_anew_and_drops_the_old_image(paths: LabPaths) -> None:
    old, new = Recipe(), Recipe(image_size="4G")
    build.ensure_image(paths, old, Phases(lambda s: None))
    build.ensure_image(paths, new, Phases(lambda s: None))
    assert paths.image(new.digest).complete
    assert not paths.image(old.digest).dir.exists()


def test_rmtree_refuses_while_something_is_mounted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(build, "mounts_under", lambda p: [str(p / "rootfs/dev")])
    monkeypatch.setattr(build.LocalRunner, "run", lambda self, cmd, check=True: None)
    (tmp_path / "rootfs").mkdir()
    with pytest.raises(build.LabError, match="still has mounts"):
        build.safe_rmtree(tmp_path)
    assert (tmp_path / "rootfs").exists()


def test_guest_image_has_the_login_user() -> None:
    files = guest_files()
    assert any(line.startswith("centos:x:1000:") for line in files["/etc/passwd"].splitlines())
    assert "root=LABEL=root" in files["/boot/extlinux/extlinux.conf"]
    assert "console=ttyS0" in files["/boot/extlinux/extlinux.conf"]
