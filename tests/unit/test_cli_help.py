"""Every command's ``--help`` prints its help (a stray ``%`` in a help text breaks argparse's
formatting: ``kvmops lv --help`` once said ``ValueError: incomplete format``)."""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys

import pytest

from kvmops.cli.main import parser


def commands(p: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the CLI, groups included: ``(), ("lv",), ("lv", "create"), ...``."""
    found = [path]
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += commands(sub, (*path, name))
    return found


COMMANDS = commands(parser())


def test_the_sweep_sees_every_group() -> None:
    groups = {c[0] for c in COMMANDS if c}
    assert {"lv", "guest", "inventory", "net", "image", "run", "plan", "list", "journal"} <= groups
    assert ("lv", "merge") in COMMANDS and ("journal", "show") in COMMANDS and len(COMMANDS) > 40


@pytest.mark.parametrize("path", COMMANDS, ids=lambda c: " ".join(c) or "kvmops")
def test_help_of_every_command(path: tuple[str, ...]) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        parser().parse_args([*path, "--help"])
    assert done.value.code == 0
    text = out.getvalue()
    assert text.startswith("usage: kvmops" + "".join(f" {p}" for p in path))


def test_the_site_default_is_said_in_help() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser().parse_args(["lv", "create", "--help"])
    text = " ".join(out.getvalue().split())
    assert "default: $KVMOPS_SITE, else guide: this KVM host" in text and "demo plans against recorded facts" in text
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    text = " ".join(out.getvalue().split())
    assert "Commands act on $KVMOPS_SITE, else on guide (this KVM host" in text
    assert "runbooks (kvmops run/plan) default to demo" in text


def test_a_command_loads_only_the_module_that_registers_it() -> None:
    from kvmops.cli import main as cli

    def choices(p: argparse.ArgumentParser) -> set[str]:
        return {name for a in p._actions if isinstance(a, argparse._SubParsersAction) for name in a.choices}

    for command, module in cli.COMMANDS.items():
        assert choices(cli.parser(command)) == {c for c, m in cli.COMMANDS.items() if m == module}, command
    assert choices(parser()) == set(cli.COMMANDS)  # the map names every command there is
    assert cli.command_of(["-v", "lv", "list", "--site", "demo"]) == "lv" and cli.command_of(["--help"]) is None


HEAVY = ("papermill", "nbformat", "jupytext", "nbclient", "jupyter_client", "IPython", "kvmops.runbook.execute")


def _imported(code: str) -> list[str]:
    """Which of HEAVY a fresh Python has imported after running ``code``."""
    probe = f"import sys\n{code}\nprint('IMPORTED', *[m for m in {HEAVY!r} if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    last = proc.stdout.splitlines()[-1] if proc.stdout.strip() else ""
    assert last.startswith("IMPORTED"), proc.stdout + proc.stderr
    return last.split()[1:]


def test_the_probe_sees_imports() -> None:
    assert {"papermill", "nbformat"} <= set(_imported("import papermill"))


@pytest.mark.parametrize("argv", [["lv", "list"], ["guest", "list"], ["net", "list"], ["lv", "snapshot", "vminflux"],
                                  ["inventory"]], ids=" ".join)
def test_host_commands_import_no_notebook_machinery(argv: list[str]) -> None:
    run = f"with contextlib.redirect_stdout(io.StringIO()):\n    main({[*argv, '--site', 'demo']!r})"
    assert _imported(f"import contextlib, io\nfrom kvmops.cli.main import main\n{run}") == []


def test_the_kernel_side_of_a_runbook_imports_no_papermill() -> None:
    assert _imported("import kvmops.notebook\nfrom kvmops.procedures import lv, guest_create") == []
