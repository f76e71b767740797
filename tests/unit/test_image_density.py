"""The ``auto`` copy method: qemu-img map parsed (real captures), sampling, the choice, the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops.errors import InvalidInput
from kvmops.images import density as d
from kvmops.images.copy import copy_plan, copy_to_device
from kvmops.images.probe import ImageInfo
from tests.support.facts import host_facts
from tests.unit.test_image_copy import QCOW, STATE

MAPS = Path(__file__).parent.parent / "fixtures" / "images" / "qemu-img-map"
MiB = 1 << 20
RAW = ImageInfo("/var/lib/images/disk.raw", "raw", 16 * MiB)


def _map(name: str) -> tuple[d.Extent, ...]:
    return d.parse_map((MAPS / f"{name}.txt").read_text())


@pytest.mark.parametrize("name, data", [("dense", 16 * MiB), ("holes", 4 * MiB),
                                        ("written-zeros", 16 * MiB), ("mixed", 7352320)])
def test_data_bytes_of_real_maps(name: str, data: int) -> None:
    assert d.data_bytes(_map(name)) == data


def test_samples_fall_inside_data_extents_only() -> None:
    extents = _map("mixed")
    offsets = d.sample_offsets(extents)
    assert len(offsets) == d.SAMPLES and offsets == tuple(sorted(offsets))
    data = [e for e in extents if e.holds_data]
    for off in offsets:
        assert off % 4096 == 0
        assert any(e.start <= off and off + d.CHUNK <= e.start + e.length for e in data), off
    # every data extent is sampled, in proportion to its size (1, 3, 2 and 1 MiB)
    per = [sum(e.start <= o < e.start + e.length for o in offsets) for e in data]
    assert per == [9, 28, 18, 9]
    assert d.sample_offsets(()) == ()


def test_sampler_output_parsed_and_garbage_refused() -> None:
    assert d.parse_samples("0110\n", 4) == 2
    with pytest.raises(InvalidInput, match="expected 4"):
        d.parse_samples("011", 4)
    with pytest.raises(InvalidInput, match="sampler"):
        d.parse_samples("01x0", 4)
    with pytest.raises(InvalidInput, match="qemu-img map"):
        d.parse_map('{"start": 0}')
    cmd = d.sample_cmd("/img,1.raw", (0, 65536))
    assert cmd.argv[:4] == ("python3", "-I", "-S", "-c") and cmd.argv[5:] == ("/img,1.raw", "65536", "0", "65536")
    assert not cmd.mutates and not d.map_cmd("/x").mutates


def test_fraction_counts_holes_and_sampled_zeros() -> None:
    holes = d.density_of(_map("holes"), 16 * MiB)
    assert (holes.allocated, holes.fraction) == (0.25, 0.25)
    zeros = d.density_of(_map("written-zeros"), 16 * MiB, samples=64, zero_samples=48)
    assert (zeros.allocated, zeros.fraction) == (1.0, 0.25)
    assert zeros.describe() == "25% data: 100% allocated, 48/64 samples zero"
    assert "not sampled" in d.density_of(_map("dense"), 16 * MiB).describe()


@pytest.mark.parametrize("name, zero_samples, method", [
    ("dense", 0, "dd"), ("dense", 12, "dd"), ("dense", 13, "qemu-img"),
    ("holes", 0, "qemu-img"), ("written-zeros", 48, "qemu-img"), ("mixed", 0, "qemu-img")])
def test_choice_by_the_numbers(name: str, zero_samples: int, method: str) -> None:
    measured = d.density_of(_map(name), 16 * MiB, 64, zero_samples)
    choice = d.choose(RAW, measured)
    assert choice.method == method
    assert f"{measured.fraction:.0%} data" in choice.reason and "80%" in choice.reason


def test_qcow2_and_unmeasured_raw_use_qemu_img() -> None:
    dense = d.density_of(_map("dense"), 16 * MiB)
    assert d.choose(QCOW, dense).method == "qemu-img"
    assert "only qemu-img reads qcow2" in d.choose(QCOW, None).reason
    assert d.choose(RAW, None).method == "qemu-img"


def test_auto_plan_shows_command_and_reason() -> None:
    dense = d.density_of(_map("dense"), 16 * MiB, 64, 0)
    plan = copy_plan(host_facts(STATE), "vmtest1", RAW, density=dense)
    step = plan.steps[0]
    assert step.cmd is not None and step.cmd.argv == (
        "dd", f"if={RAW.path}", "of=/dev/rl_build/vmtest1", "bs=4M", "oflag=direct", "conv=fsync",
        "status=progress")
    assert "dd: dense raw image (100% data: 100% allocated, 0/64 samples zero" in step.reason
    rendered = plan.render()
    assert "dense raw image (100% data" in rendered and "oflag=direct" in rendered
    assert "conv=sparse" not in rendered and "target-is-zero" not in rendered
    sparse = copy_plan(host_facts(STATE), "vmtest1", RAW, density=d.density_of(_map("holes"), 16 * MiB, 64, 0))
    assert sparse.steps[0].cmd is not None and sparse.steps[0].cmd.argv[:2] == ("qemu-img", "convert")
    assert "mostly-empty raw image (25% data" in sparse.steps[0].reason
    # an explicit method wins over the numbers; an unknown one is refused before any command
    forced = copy_plan(host_facts(STATE), "vmtest1", RAW, method="qemu-img", density=dense)
    assert forced.steps[0].cmd is not None and forced.steps[0].cmd.argv[0] == "qemu-img"
    with pytest.raises(InvalidInput, match="auto, qemu-img, dd"):
        copy_to_device(RAW, "/dev/loop0", 32 * MiB, target="x", method="fast")
