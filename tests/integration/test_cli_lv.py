"""`kvmops lv` end to end on a scratch VG: plan by default, --apply acts, --confirm guards."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.site import default_site_path
from tests.conftest import need_tools
from tests.support.loop import scratch_vg

pytestmark = pytest.mark.integration


SITE: list[str] = []


@pytest.fixture
def vg(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The guide's site on a scratch VG, its libvirt the test driver (a default guest "test")."""
    need_tools("lvm", "losetup")
    site = tmp_path / "site.toml"
    site.write_text(default_site_path().read_text().replace('uri = "qemu:///system"', 'uri = "test:///default"'))
    SITE[:] = [str(site)]
    with scratch_vg(tmp_path, "rl_build", "256M") as env:
        yield env


def kvmops(*args: str, site: bool = True) -> subprocess.CompletedProcess[str]:
    extra = ["--site", SITE[0]] if site and "--site" not in args else []
    return subprocess.run([sys.executable, "-m", "kvmops.cli.main", *args, *extra], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)


def lv_names() -> list[str]:
    out = subprocess.run(["lvs", "--noheadings", "-o", "lv_name", "rl_build"], capture_output=True, text=True,
                         check=True).stdout
    return out.split()


def test_plan_then_apply_then_guarded_remove(vg: dict[str, str]) -> None:
    plan = kvmops("lv", "create", "vmtest1", "--size", "64m")
    assert plan.returncode == 0, plan.stderr
    assert "lvcreate --name vmtest1 --size 64m --wipesignatures y --yes rl_build" in plan.stdout
    assert "add --apply" in plan.stdout and lv_names() == []

    done = kvmops("lv", "create", "vmtest1", "--size", "64m", "--apply")
    assert done.returncode == 0, done.stderr
    assert lv_names() == ["vmtest1"]

    listed = kvmops("lv", "list")
    assert "rl_build/vmtest1" in listed.stdout and "64.00 MiB" in listed.stdout

    refused = kvmops("lv", "remove", "vmtest1", "--apply")
    assert refused.returncode == 2
    assert "confirm='rl_build/vmtest1'" in refused.stderr and "nothing was changed" in refused.stderr
    assert lv_names() == ["vmtest1"]

    removed = kvmops("lv", "remove", "vmtest1", "--apply", "--confirm", "rl_build/vmtest1")
    assert removed.returncode == 0, removed.stderr
    assert lv_names() == []


def test_without_an_answer_from_libvirt_nothing_is_planned(vg: dict[str, str]) -> None:
    """Which disks run is a safety input: libvirt down (the guide's qemu:///system, no libvirtd
    here) refuses, it never degrades to "no guest runs"."""
    res = kvmops("lv", "create", "vmtest1", "--size", "64m", "--apply", site=False)
    assert res.returncode == 2 and "does not answer" in res.stderr and "plans nothing" in res.stderr
    assert lv_names() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("lv", "create", "vm test", "--size", "1g"), "LV name 'vm test'"),
        (("lv", "create", "vmx", "--size", "0"), "larger than zero"),
        (("lv", "create", "vmx", "--size", "5q"), "unknown unit"),
        (("lv", "create", "root", "--size", "1g"), "host LV"),
        (("lv", "create", "vmx", "--size", "10t"), "free"),
        (("lv", "remove", "home", "--apply", "--confirm", "rl_build/home"), "host LV"),
        (("lv", "create", "vmx", "--size", "1g", "--site", "/nonexistent.toml"), "does not exist"),
    ],
)
def test_bad_input_is_refused_and_nothing_changes(vg: dict[str, str], args: tuple[str, ...], message: str) -> None:
    res = kvmops(*args)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert lv_names() == []


def test_the_cli_as_installed_help_site_names_and_a_bad_interval() -> None:
    """The real entry point, in a subprocess: `lv --help` prints, `--site demo` plans from the
    recorded host (a shipped site by name), a bad --interval is one clear line; none needs root."""
    helped = kvmops("lv", "--help", site=False)
    assert helped.returncode == 0 and "every guest snapshot" in helped.stdout and not helped.stderr
    demo = kvmops("lv", "snapshot", "vminflux", "--site", "demo")
    assert demo.returncode == 0, demo.stderr
    assert "lvcreate --snapshot --name vminflux-" in demo.stdout and "--size 5g rl_build/vminflux" in demo.stdout
    refused = kvmops("lv", "snapshot", "vmtest1", "--site", "demo")
    assert refused.returncode == 2 and "running guest test1" in refused.stderr
    bad = kvmops("lv", "merge", "vminflux-20261120T0900Z", "--interval", "0", "--site", "demo")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "argument --interval: 0: give whole seconds from 1 to 3600" in bad.stderr
