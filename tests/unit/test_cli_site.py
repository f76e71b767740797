"""The CLI resolves ``--site`` as the runbooks do (a shipped name, a path, ``$KVMOPS_SITE``),
with its own default: the guide's host, the machine it runs on."""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import pytest

from kvmops.cli.common import CLI_DEFAULT_SITE, site_path
from kvmops.cli.main import main
from kvmops.site import SITE_ENV, resolve_site, shipped_sites


def kvmops(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_the_cli_default_is_this_host_and_env_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SITE_ENV, raising=False)
    assert CLI_DEFAULT_SITE == "guide"
    assert site_path(argparse.Namespace(site=None)) == shipped_sites()["guide"]
    assert site_path(argparse.Namespace()) == shipped_sites()["guide"]  # a command without --site
    monkeypatch.setenv(SITE_ENV, "demo")
    assert site_path(argparse.Namespace(site=None)) == shipped_sites()["demo"] == resolve_site(None)


@pytest.mark.parametrize("site", ["demo", "guide", "kvmops/sites/demo.toml"])
def test_cli_and_runbooks_resolve_a_given_site_alike(site: str) -> None:
    assert site_path(argparse.Namespace(site=site)) == resolve_site(site) == resolve_site(site, default="guide")


@pytest.mark.parametrize("argv", [
    ("lv", "list"), ("lv", "snapshots"), ("lv", "create", "vmweb3", "--size", "1g"), ("inventory",),
    ("guest", "list"), ("guest", "start", "influx"), ("image", "seed", "web3"),
])
def test_every_group_takes_a_shipped_site_by_name(argv: tuple[str, ...]) -> None:
    code, out, err = kvmops(*argv, "--site", "demo")
    assert code == 0, err
    assert "rl_build/vm" in out or "influx" in out or "web3" in out


def test_site_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SITE_ENV, "demo")
    code, out, _ = kvmops("lv", "list")
    assert code == 0 and "rl_build/vmtest1" in out


def test_a_site_file_by_path(tmp_path: Path) -> None:
    code, out, _ = kvmops("lv", "list", "--site", str(shipped_sites()["demo"]))
    assert code == 0 and "rl_build/vmtest1" in out


@pytest.mark.parametrize(("site", "message"), [
    ("nope", "no shipped site called 'nope' (shipped: demo, demo2, guide)"),
    ("/nonexistent/site.toml", "site file /nonexistent/site.toml does not exist"),
])
def test_a_wrong_site_is_a_clear_error(site: str, message: str) -> None:
    code, _, err = kvmops("lv", "list", "--site", site)
    assert code == 2 and message in err and "Traceback" not in err
