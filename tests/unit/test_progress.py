"""Progress of long commands: one updating line in a terminal, a few lines anywhere else."""

from __future__ import annotations

import io

from kvmops.progress import Updating, printer, thinned

COPY = [f"    ({p:.2f}/100%)" for p in (0.0, 1.0, 2.02, 9.9, 24.9, 25.0, 30.5, 55.0, 74.0, 99.52, 100.0)]
DD = [f"{n * 4194304} bytes ({n * 4} MB, {n * 4} MiB) copied, {n} s, 4.2 MB/s" for n in range(1, 25)]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_elsewhere_a_command_reads_as_a_few_lines_and_the_verify_counts_again() -> None:
    seen: list[str] = []
    say = thinned(seen.append)
    for line in [*COPY, "step 2: verify", *COPY, "Images are identical."]:
        say(line)
    quarter = ["25%", "55%", "99%", "100%"]  # the first percentage past each quarter
    assert seen == [*quarter, "step 2: verify", *quarter, "Images are identical."]


def test_dd_lines_every_tenth_elsewhere() -> None:
    seen: list[str] = []
    say = thinned(seen.append)
    for line in DD:
        say(line)
    assert seen == [DD[0], DD[10], DD[20]]


def test_a_terminal_gets_one_updating_line_per_command() -> None:
    out = Tty()
    say = printer("  ", out)
    assert isinstance(say, Updating)
    for line in [*COPY, "step 2: verify", *COPY[:5]]:
        say(line)
    say("Images are identical.")
    text = out.getvalue()
    lines = text.split("\n")
    assert lines[0].count("\r") == len(COPY) and lines[0].endswith("100%\x1b[K")  # one line, rewritten
    assert lines[1] == "  step 2: verify"
    assert lines[2].count("\r") == 5 and lines[3] == "  Images are identical."  # ended before the next line


def test_a_pipe_or_notebook_is_not_a_terminal() -> None:
    out = io.StringIO()
    say = printer("  ", out)
    for line in COPY:
        say(line)
    assert out.getvalue() == "  25%\n  55%\n  99%\n  100%\n"
