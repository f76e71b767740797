"""Boot verification from the serial console: real captured consoles, one case per fixture.

Each ``tests/fixtures/console/NAME.log`` is what a real guest printed (how it was made is the
``source`` of ``NAME.expected.json``), with the stage it must be classified as.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvmops.guests import boot

FIXTURES = Path(__file__).parent.parent / "fixtures" / "console"
CASES = sorted(FIXTURES.glob("*.log"))


def _expected(case: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(case.with_suffix(".expected.json").read_text())
    return data


def _text(case: Path) -> str:
    return case.read_bytes().decode("utf-8", "replace")


def test_every_fixture_has_an_expectation_and_every_stage_is_covered() -> None:
    assert len(CASES) >= 8
    stages = {str(_expected(c)["stage"]) for c in CASES}
    for c in CASES:
        assert _expected(c)["source"]
    assert {boot.NOTHING, boot.BOOT_LOADER, boot.LOGIN, boot.PANIC, boot.ROOT_MISSING, boot.EMERGENCY} <= stages


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_captured_console(case: Path) -> None:
    want = _expected(case)
    got = boot.classify(_text(case))
    assert got.stage == want["stage"]
    assert got.booted is want["booted"]
    assert str(want["evidence"]) in got.evidence
    v = boot.verdict(_text(case), 42.0)
    assert v.booted is want["booted"]
    if want["booted"]:
        assert v.message.startswith("booted: login prompt after 42 s")
    else:
        assert v.message.startswith("NOT verified: no login prompt within 42 s")
        assert "this may be because" in v.message


def test_boot_loader_lines_alone_never_count_as_booted() -> None:
    text = ("\nSYSLINUX 6.04 20210613 Copyright (C) 1994-2015 H. Peter Anvin et al\n"
            "Loading /boot/vmlinuz... ok\nLoading /boot/initrd.img...ok\n")
    v = boot.verdict(text, 600)
    assert not v.booted and v.stage == boot.BOOT_LOADER
    assert "'Loading /boot/initrd.img...ok'" in v.message
    assert "large kernel and initrd" in v.message


def test_the_last_lines_are_cut_and_escape_sequences_removed() -> None:
    text = "[\x1b[0;32m  OK  \x1b[0m] Reached target Basic System.\r\n" + "x" * 300 + "\r\n"
    v = boot.verdict(text, 5)
    assert v.stage == boot.USERSPACE
    assert v.last[0] == "[  OK  ] Reached target Basic System."
    assert len(v.last[-1]) == 160


def test_last_login_is_not_a_login_prompt_but_a_prompt_after_it_is() -> None:
    assert not boot.classify("Last login: Mon Nov 30 08:00:00 UTC 2026 on ttyS0\n").booted
    assert boot.classify("Last login: Mon\nlocalhost login: ").stage == boot.LOGIN
    assert boot.classify("kvmops-guest login: root\nPassword:").stage == boot.LOGIN


def test_the_images_own_marker_counts() -> None:
    text = "[    7.5] XFS (vda1): Ending clean mount\nkvmops-guest: booted kvmops-guest\n"
    assert boot.classify(text).stage == boot.KERNEL
    state = boot.classify(text, markers=("kvmops-guest: booted",))
    assert state.booted and state.stage == boot.MARKER
    assert "boot marker" in boot.verdict(text, 9, markers=("kvmops-guest: booted",)).message


def test_a_panic_wins_over_earlier_stages_but_not_over_a_later_login() -> None:
    panic = _text(FIXTURES / "kernel-no-initrd-panic.log")
    assert boot.classify(panic).fatal
    assert boot.classify(panic + "\nSYSLINUX 6.04\nLoading /boot/vmlinuz... ok\n").stage == boot.PANIC
    assert boot.classify(panic + "\nhost1 login: ").stage == boot.LOGIN


class FakeConsole:
    """Chunks arriving at given seconds, read through ``read(timeout)``; a fake clock."""

    def __init__(self, chunks: list[tuple[float, str]]) -> None:
        self.now = 0.0
        self.chunks = chunks

    def clock(self) -> float:
        return self.now

    def read(self, timeout: float) -> str:
        due = [c for c in self.chunks if c[0] <= self.now + timeout]
        if due:
            self.chunks.remove(due[0])
            self.now = max(self.now, due[0][0])
            return due[0][1]
        self.now += timeout
        return ""


def test_wait_for_boot_stops_at_the_login_prompt_and_says_when() -> None:
    text = _text(FIXTURES / "small-guest-one-level-tcg.log")
    cut = text.index("kvmops-guest login:")
    console = FakeConsole([(3.0, text[:200]), (11.0, text[200:cut]), (20.5, text[cut:]), (30.0, "never read")])
    v, seen = boot.wait_for_boot(console.read, 120, clock=console.clock)
    assert v.booted and v.seconds == 20.5
    assert "never read" not in seen and seen.endswith("login: ")


def test_wait_for_boot_times_out_with_a_plain_message() -> None:
    console = FakeConsole([(2.0, "SeaBIOS (version 1.16.2-debian-1.16.2-1)\n"), (4.0, "\nSYSLINUX 6.04 2021\n")])
    v, _ = boot.wait_for_boot(console.read, 30, clock=console.clock, poll=5)
    assert not v.booted and v.stage == boot.BOOT_LOADER and v.seconds == 30
    assert v.message.startswith("NOT verified: no login prompt within 30 s;")


def test_wait_for_boot_stops_early_on_a_fatal_stage() -> None:
    panic = _text(FIXTURES / "kernel-no-initrd-panic.log")
    console = FakeConsole([(15.0, panic)])
    v, _ = boot.wait_for_boot(console.read, 300, clock=console.clock)
    assert v.stage == boot.PANIC and v.seconds == 15.0
    assert "the kernel panicked" in v.message and "VFS: Unable to mount root fs" in v.message
