"""One test per guard: the forbidden command is never built."""

from __future__ import annotations

import pytest

from kvmops import guards
from kvmops.errors import InvalidInput, SafetyError
from kvmops.hostfacts import FactsUnavailable, HostFacts, lv_free, lv_of_no_guest
from kvmops.lvm import commands as c
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from tests.support.facts import domain, host_facts


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


def _facts(attr: str, *running: str) -> HostFacts:
    lv = LV("vmtest1", "rl_build", attr, 1 << 30, "", None, None)
    lvm = LvmState(VG("rl_build", 10 << 30, 5 << 30, 4 << 20, 1), (lv,))
    return host_facts(lvm, domains=[domain("t1", f"/dev/{p}", active=True) for p in running])


def test_in_use_guard_asks_the_facts_for_running_guests_and_the_open_flag() -> None:
    lv = _facts("-wi-a-----").lvm.need("vmtest1")
    lv_free(_facts("-wi-a-----"), lv, "snapshot")
    with pytest.raises(SafetyError, match="snapshot refused: rl_build/vmtest1 is in use: it is the disk of the "
                                          "running guest t1"):
        lv_free(_facts("-wi-a-----", "rl_build/vmtest1"), lv, "snapshot")
    with pytest.raises(SafetyError, match="it is open"):
        lv_free(_facts("-wi-ao----"), lv, "merge")
    with pytest.raises(FactsUnavailable, match="cannot tell"):
        lv_free(_facts("-wi-XX----"), lv, "merge")


def test_a_defined_guests_disk_is_not_removed() -> None:
    facts = host_facts(_facts("-wi-a-----").lvm, domains=[domain("t1", "/dev/rl_build/vmtest1")])
    with pytest.raises(SafetyError, match="is a disk of guest t1"):
        lv_of_no_guest(facts, facts.lvm.need("vmtest1"), "lvremove")
