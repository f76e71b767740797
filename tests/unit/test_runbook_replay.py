"""The replay runner and the demo site: recorded read-only facts, mutations refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops.cmd import change, read
from kvmops.errors import ConfigError, NotFound
from kvmops.host import connect
from kvmops.lvm.state import read_state
from kvmops.runbook.sites import resolve_site, shipped_sites
from kvmops.runners.replay import ReplayRefused, ReplayRunner, key, record
from kvmops.site import load_site


def test_record_then_replay(tmp_path: Path) -> None:
    argv = ("lvs", "--reportformat", "json")
    path = record(tmp_path, argv, "the output\n", returncode=0)
    assert path.name == key(argv) + ".out" and path.read_text() == "the output\n"
    record(tmp_path, ("false",), "", returncode=1, stderr="nope\n")
    runner = ReplayRunner(tmp_path, host="recorded")
    assert runner.run(read(*argv)).stdout == "the output\n"
    res = runner.run(read("false"), check=False)
    assert (res.returncode, res.stderr) == (1, "nope\n")
    assert [r.command for r in runner.records] == ["lvs --reportformat json", "false"]


def test_unknown_read_and_any_mutation_are_refused(tmp_path: Path) -> None:
    record(tmp_path, ("true",), "")
    runner = ReplayRunner(tmp_path, host="recorded")
    with pytest.raises(NotFound, match=r"no recorded output for `ip -j link`"):
        runner.run(read("ip", "-j", "link"))
    with pytest.raises(ReplayRefused, match="plan-only"):
        runner.run(change("lvremove", "rl_build/vmold"))
    assert not runner.executes_mutations


def test_key_is_stable_and_distinguishes_argv() -> None:
    assert key(("lvs", "a")) == key(["lvs", "a"]) != key(("lvs", "a", ""))
    assert key(("/usr/sbin/lvs",)).startswith("lvs-")


def test_broken_index_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text('{"commands": [{"argv": 1}]}')
    with pytest.raises(ConfigError, match="not a replay index"):
        ReplayRunner(tmp_path)


def test_demo_site_plans_and_refuses_apply() -> None:
    site = load_site(resolve_site("demo"))
    assert site.replay.endswith("sites/demo/replay")
    assert site.libvirt_uri == f"test://{Path(site.path).resolve().parent}/demo/node.xml"
    host = connect(site)
    try:
        state = read_state(host.runner, site.vg)
        assert {lv.name for lv in state.lvs} >= {"root", "home", "opt", "vmtest1", "vminflux"}
        assert {d.name: d.active for d in host.virt.domains()} == {"test1": True, "influx": False}
    finally:
        host.close()
    with pytest.raises(ReplayRefused, match="plan-only"):
        connect(site, apply=True)


def test_site_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KVMOPS_SITE", raising=False)
    assert resolve_site("") == shipped_sites()["demo"]
    assert resolve_site("guide") == shipped_sites()["guide"]
    other = tmp_path / "x.toml"
    other.write_text("")
    monkeypatch.setenv("KVMOPS_SITE", str(other))
    assert resolve_site("") == other.resolve()
    with pytest.raises(ConfigError, match="no shipped site called 'nope'"):
        resolve_site("nope")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_site(str(tmp_path / "missing.toml"))


def test_replay_key_in_site_file_is_checked(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('[host]\nname = "x"\nreplay = "nothere"\n[storage]\nvg = "v"\n'
                                     'lv_prefix = "vm"\n[network]\nuplink = "eth0"\n')
    with pytest.raises(ConfigError, match=r"host.replay: .*nothere holds no index.json"):
        load_site(tmp_path / "s.toml")
