"""Every command's ``--help`` prints its help (a stray ``%`` in a help text breaks argparse's
formatting: ``kvmops lv --help`` once said ``ValueError: incomplete format``)."""

from __future__ import annotations

import argparse
import contextlib
import io

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
