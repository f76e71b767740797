"""Boot phases and failures read from real serial logs of the lab and its guest image."""

from __future__ import annotations

from pathlib import Path

from kvmops_lab.serial import PHASES, fatal, new_phases, tail

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lab"


def test_a_real_lab_boot_shows_every_phase_in_order() -> None:
    log = (FIXTURES / "lab-serial.log").read_text(errors="replace")
    seen: set[str] = set()
    assert new_phases(log, seen) == [phase for _, phase in PHASES]
    assert new_phases(log, seen) == []  # each phase is reported once
    assert fatal(log) is None


def test_phases_arrive_as_the_log_grows() -> None:
    log = (FIXTURES / "lab-serial.log").read_text(errors="replace")
    seen: set[str] = set()
    cut = log.index("Run /init as init process")
    assert new_phases(log[:cut], seen) == ["kernel started"]
    assert new_phases(log, seen)[0] == "initramfs running"


def test_a_failed_boot_is_fatal() -> None:
    log = (FIXTURES / "lab-serial-no-root.log").read_text(errors="replace")
    assert fatal(log) is not None


def test_tail_is_short_and_printable(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_bytes(b"".join(b"line %d\r\n" % i for i in range(100)) + b"\x1b[0;32m  OK  \x1b[0m done\n")
    text = tail(log, 5)
    lines = text.splitlines()
    assert len(lines) == 5 and lines[0].strip() == "line 96"
    assert "\x1b" not in text and "OK" in lines[-1]
    assert tail(tmp_path / "missing.log") == "(no serial log)"
