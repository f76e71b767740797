"""The transfer's pieces on this machine: the stream through local processes (its sha256, a
stall, a target that stops early), the progress meter, the sha256 command and its output, LV tags in LVM's
report, the commands at both ends, and the Transfer effect in a rendered plan and plan mode."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from kvmops.cmd import read
from kvmops.errors import CommandFailed, InvalidInput
from kvmops.executor import Executor
from kvmops.host import Host
from kvmops.lvm.facts import LV, LV_FIELDS, VG, parse_lvs
from kvmops.lvm.state import LvmState
from kvmops.plan import Endpoint, Plan, Transfer
from kvmops.runners import LocalRunner, PlanRunner
from kvmops.runners.stream import TransferFailed, stream
from kvmops.runners.transfer import run_transfer
from kvmops.site import load_site
from kvmops.transfer import commands as tc
from kvmops.transfer import lvm as tl
from kvmops.transfer.meter import Meter
from kvmops.transfer.result import parse_sha256, sha256_cmd
from tests.support.facts import host_facts

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lvm"


def test_a_local_stream_carries_the_data_and_its_sha256(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40000 + b"tail"
    (tmp_path / "in").write_bytes(data)
    lines: list[str] = []
    r = LocalRunner()
    got = stream(r, tc.cat(str(tmp_path / "in")), r, tc.dd_file(str(tmp_path / "out")), size=len(data),
                 progress=lines.append)
    assert got.sha256 == hashlib.sha256(data).hexdigest() and got.bytes == len(data)
    assert (tmp_path / "out").read_bytes() == data and lines[-1].startswith("copy: 9.77 MiB in ")


def test_a_stalled_source_is_given_up_and_both_ends_are_stopped(tmp_path: Path) -> None:
    r = LocalRunner()
    with pytest.raises(TransferFailed, match="sends nothing for 0.3 s"):
        stream(r, read("sleep", "30"), r, tc.dd_file(str(tmp_path / "out")), idle=0.3)


def test_a_target_that_ends_early_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b"x" * (8 << 20))
    r = LocalRunner()
    with pytest.raises(TransferFailed, match="ended before the data did"):
        stream(r, tc.cat(str(tmp_path / "in")), r, read("true"))
    with pytest.raises(CommandFailed) as err:
        stream(r, tc.cat(str(tmp_path / "in")), r, read("sh", "-c", "echo broken >&2; exit 3"))
    assert err.value.returncode == 3 and "broken" in err.value.stderr


def test_a_missing_tool_is_named(tmp_path: Path) -> None:
    r = LocalRunner()
    with pytest.raises(CommandFailed, match="not installed"):
        stream(r, read("no-such-tool-kvmops"), r, tc.dd_file(str(tmp_path / "out")))


def test_the_meter_says_a_few_lines() -> None:
    now = [0.0]
    lines: list[str] = []
    m = Meter("vda", 100 << 20, lines.append, clock=lambda: now[0])
    for _ in range(100):
        now[0] += 0.1
        m.add(1 << 20)
    m.finish()
    assert len(lines) == 11 and lines[0] == "vda: 10.00 MiB of 100.00 MiB (10%), 10.00 MiB/s, about 9 s left"
    assert lines[-1] == "vda: 100.00 MiB in 10.0 s (10.00 MiB/s)"
    unknown: list[str] = []
    u = Meter("file", None, unknown.append, every=30, clock=lambda: now[0])
    now[0] += 31
    u.add(5)
    assert unknown == ["file: 5 B, 0 B/s"]


def test_sha256_output() -> None:
    digest = "a" * 64
    assert parse_sha256(f"{digest}  /dev/vg/lv\n", "x") == digest
    assert parse_sha256(f"{digest} */dev/vg/lv\n", "x") == digest  # openssl dgst -r
    assert parse_sha256(f"\\{digest}  /dev/vg/odd\\nname\n", "x") == digest
    with pytest.raises(Exception, match="printed no checksum"):
        parse_sha256("sha256sum: /dev/x: No such file", "x")
    assert sha256_cmd("/dev/vg/lv").argv == ("openssl", "dgst", "-sha256", "-r", "--", "/dev/vg/lv")


def test_lv_tags_are_read_and_a_report_without_them_has_none() -> None:
    assert LV_FIELDS.endswith(",lv_tags")
    tagged, plain = parse_lvs((FIXTURES / "move-tags.lvs.out").read_text())
    assert tagged.tags == ("kvmops-move-copying", "kvmops-move-from:demo:rl_build/vmtest1") and plain.tags == ()
    old = json.dumps({"report": [{"lv": [{"lv_name": "vmx", "vg_name": "rl_build", "lv_attr": "-wi-a-----",
                                          "lv_size": "1048576", "origin": "", "data_percent": "", "lv_time": ""}]}]})
    assert parse_lvs(old)[0].tags == ()  # the captured fixtures have no lv_tags


def test_the_commands_at_both_ends() -> None:
    assert tc.dd_read("/dev/vg/snap").argv == ("dd", "if=/dev/vg/snap", "bs=4M", "iflag=direct", "status=none")
    w = tc.dd_write("/dev/vg/lv")
    assert w.mutates and w.argv == ("dd", "of=/dev/vg/lv", "bs=4M", "iflag=fullblock", "oflag=direct", "conv=fsync",
                                    "status=none")
    assert tc.codec("zstd").compress("/dev/vg/s").argv[:4] == ("zstd", "--quiet", "--force", "--stdout")
    assert tc.codec("gzip").decompress("/b/x.gz").argv == ("gzip", "--decompress", "--stdout", "--", "/b/x.gz")
    with pytest.raises(InvalidInput):
        tc.dd_read("relative/path")
    with pytest.raises(InvalidInput):
        tc.codec("xz")
    assert tl.tag("kvmops-move-from:build 1:rl_build/vmx") == "kvmops-move-from:build_1:rl_build/vmx"
    assert tl.lvcreate_tagged("vg", "vmx", 1 << 30, ["a", "b"]).argv == (
        "lvcreate", "--name", "vmx", "--size", "1g", "--addtag", "a", "--addtag", "b", "--wipesignatures", "y",
        "--yes", "vg")
    assert tl.retag("vg", "vmx", add=["n"], remove=["o"]).argv == ("lvchange", "--deltag", "o", "--addtag", "n",
                                                                  "vg/vmx")


def _transfer() -> Transfer:
    return Transfer(Endpoint("a", tc.dd_read("/dev/vg/s")), Endpoint("b", tc.dd_write("/dev/vg2/lv")), size=1 << 30,
                    verify=(Endpoint("a", sha256_cmd("/dev/vg/s")), Endpoint("b", sha256_cmd("/dev/vg2/lv"))),
                    reuse=True, key="vda")


def test_a_transfer_in_a_rendered_plan() -> None:
    text = Plan("copy").add("stream it", _transfer()).render()
    assert "a$ dd if=/dev/vg/s bs=4M iflag=direct status=none | b$ dd of=/dev/vg2/lv" in text
    assert ("# then the same sha256 on both ends: a$ openssl dgst -sha256 -r -- /dev/vg/s; "
            "b$ openssl dgst -sha256 -r -- /dev/vg2/lv") in text
    assert "skipped when the sha256 sums below agree already" in text


def test_plan_mode_records_a_transfer_without_running_it() -> None:
    site = replace(load_site(), name="b")
    runner = PlanRunner(host="b")
    host = Host(site, runner, "test:///default")
    a = Host(replace(site, name="a"), PlanRunner(host="a"), "")
    t = Transfer(Endpoint("a", tc.dd_read("/dev/vg/s")), Endpoint("b", tc.dd_write("/dev/rl_build/vmlv")),
                 size=1 << 30, key="vda")
    facts = host_facts(LvmState(VG("rl_build", 100 << 30, 90 << 30, 4 << 20, 1),
                                (LV("vmlv", "rl_build", "-wi-a-----", 1 << 30, "", None, None),)), site=site)
    ex = Executor(host, lambda _: None, peers={"a": a, "b": host})
    plan = Plan("copy").add("stream it", t, target="rl_build/vmlv")
    assert ex.execute(plan, facts=facts) == ["1. planned: stream it"]
    assert [(r.command, r.executed, r.mutates) for r in runner.records] == [(t.display, False, True)]
    assert not ex.transferred


def test_a_source_that_is_the_stream_is_not_read_again(tmp_path: Path) -> None:
    data = bytes(range(256)) * 8192
    (tmp_path / "snap").write_bytes(data)
    out = tmp_path / "out"
    r = LocalRunner()
    snap = str(tmp_path / "snap")
    t = Transfer(Endpoint("a", tc.cat(snap)), Endpoint("b", tc.dd_file(str(out))), size=len(data),
                 verify=(Endpoint("b", sha256_cmd(str(out))),), source_sum=Endpoint("a", sha256_cmd(snap)), key="vda")
    text = Plan("copy").add("stream it", t).render()
    assert "# the source cannot change while it streams: its sha256 is the stream's, computed in flight" in text
    assert f"# then the same sha256 read back: b$ openssl dgst -sha256 -r -- {out}" in text
    done = run_transfer(t, lambda _host: r, lambda _line: None)
    want = hashlib.sha256(data).hexdigest()
    assert done.sha256 == want and done.sums == {t.source_sum.display(): want, t.verify[0].display(): want}
    assert done.in_flight == (t.source_sum.display(),)
    hashed = [rec.command for rec in r.records if rec.command.startswith("openssl dgst")]
    assert hashed == [f"openssl dgst -sha256 -r -- {out}"]  # the target read back once; the source not read again
    again = run_transfer(replace(t, reuse=True), lambda _host: r, lambda _line: None)
    assert again.skipped and again.bytes == 0  # before a stream, the source is read to compare
    later = [rec.command for rec in r.records if rec.command.startswith("openssl dgst")][1:]
    assert sorted(later) == sorted([f"openssl dgst -sha256 -r -- {tmp_path / 'snap'}",
                                    f"openssl dgst -sha256 -r -- {out}"])  # read at the same time: in any order


def test_a_target_that_differs_from_the_stream_fails_the_in_flight_check(tmp_path: Path) -> None:
    (tmp_path / "snap").write_bytes(b"x" * 100000)
    (tmp_path / "other").write_bytes(b"y" * 100000)
    r = LocalRunner()
    t = Transfer(Endpoint("a", tc.cat(str(tmp_path / "snap"))), Endpoint("b", tc.dd_file(str(tmp_path / "out"))),
                 verify=(Endpoint("b", sha256_cmd(str(tmp_path / "other"))),),
                 source_sum=Endpoint("a", sha256_cmd(str(tmp_path / "snap"))), key="vda")
    with pytest.raises(TransferFailed, match="NOT good"):
        run_transfer(t, lambda _host: r, lambda _line: None)


def _gated_source(tmp_path: Path, data: bytes, *, fail: bool = False) -> Transfer:
    """A source that sends its data only once the measure has started (a marker file): a measure
    run after the stream would leave it waiting until the stall limit."""
    (tmp_path / "snap").write_bytes(data)
    marker, snap = tmp_path / "measure-started", str(tmp_path / "snap")
    tail = "echo broken >&2; exit 3" if fail else 'cat "$2"'
    wait = f'for i in $(seq 500); do [ -e "$1" ] && break; sleep 0.01; done; [ -e "$1" ] || exit 9; {tail}'
    measure = read("sh", "-c", 'touch "$1"; sleep 0.3; openssl dgst -sha256 -r -- "$2"', "m", str(marker), snap)
    return Transfer(Endpoint("a", read("sh", "-c", wait, "src", str(marker), snap)),
                    Endpoint("b", tc.dd_file(str(tmp_path / "out"))), size=len(data),
                    verify=(Endpoint("b", sha256_cmd(str(tmp_path / "out"))),), measure=(Endpoint("a", measure),),
                    key="vda")


def test_the_measure_reads_the_source_while_the_data_streams(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096
    r = LocalRunner()
    done = run_transfer(_gated_source(tmp_path, data), lambda _host: r, lambda _line: None)
    want = hashlib.sha256(data).hexdigest()
    assert done.sha256 == want and list(done.measured.values()) == [want]


def test_a_failed_stream_waits_for_the_measure_then_names_its_own_error(tmp_path: Path) -> None:
    lines: list[str] = []
    r = LocalRunner()
    with pytest.raises(CommandFailed) as err:
        run_transfer(_gated_source(tmp_path, b"x" * 1000, fail=True), lambda _host: r, lines.append)
    assert err.value.returncode == 3 and "broken" in err.value.stderr
    measured = [rec for rec in r.records if rec.command.startswith("sh -c 'touch")]
    assert len(measured) == 1 and measured[0].returncode == 0  # it ended before the error was raised
