"""One test per guard: the forbidden command is never built."""

from __future__ import annotations

import pytest

from kvmops import guards
from kvmops.errors import InvalidInput, SafetyError
from kvmops.lvm import commands as c


@pytest.mark.parametrize(
    "argv",
    [
        ("lvremove", "rl_build"),
        ("lvremove", "rl_build/"),
        ("lvremove", "/rl_build"),
        ("lvremove", "-y", "rl_build/vmtest1"),
        ("lvremove", "--yes", "rl_build/vmtest1"),
        ("lvremove", "-f", "rl_build/vmtest1"),
        ("lvremove", "--force", "rl_build/vmtest1"),
        ("lvremove", "-ff", "rl_build/vmtest1"),
        ("lvremove", "-vy", "rl_build/vmtest1"),
        ("lvremove", "--force=y", "rl_build/vmtest1"),
        ("lvremove", "rl_build/vmtest1", "rl_build/vmtest2"),
        ("lvremove",),
        ("lvremove", "rl_build/a/b"),
    ],
)
def test_lvremove_guard_refuses(argv: tuple[str, ...]) -> None:
    with pytest.raises(SafetyError):
        guards.lvremove_argv(argv)


def test_lvremove_builder_gives_one_exact_lv_and_answers_only_its_prompt() -> None:
    cmd = c.lvremove("rl_build", "vmtest1")
    assert cmd.argv == ("lvremove", "rl_build/vmtest1")
    assert cmd.stdin == "y\n" and cmd.mutates


@pytest.mark.parametrize("lv", ["", "-y", "a/b", "x y", ".."])
def test_lvremove_builder_refuses_bad_names(lv: str) -> None:
    with pytest.raises((SafetyError, InvalidInput)):
        c.lvremove("rl_build", lv)


def test_host_lv_guard() -> None:
    for lv in ("root", "home", "opt", "vm"):
        with pytest.raises(SafetyError, match="host LV"):
            guards.not_host_lv(lv, "vm")
    guards.not_host_lv("vmtest1", "vm")


def test_running_guest_guard() -> None:
    with pytest.raises(SafetyError, match="running guest"):
        guards.not_in_use("rl_build/vmtest1", {"rl_build/vmtest1"}, "snapshot")
    guards.not_in_use("rl_build/vmtest1", {"rl_build/vmother"}, "snapshot")


def test_open_lv_guard() -> None:
    with pytest.raises(SafetyError, match="is open"):
        guards.not_open("rl_build/vmtest1", True, "merge")
    guards.not_open("rl_build/vmtest1", None, "merge")
