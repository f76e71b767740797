"""Streaming for real between two SSH endpoints on loopback (two private sshd's with strict
host keys): regular files and loop devices as the data, the real dd flags (O_DIRECT on block
devices), the compressors, failures named by host, and the Transfer effect through the one
executor with faults injected before and after it ran."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kvmops.errors import CommandFailed
from kvmops.executor import Executor, StepFailed
from kvmops.host import Host
from kvmops.plan import Endpoint, Plan, Transfer
from kvmops.runners import SSHRunner, faults
from kvmops.runners.stream import TransferFailed, stream
from kvmops.runners.transfer import run_transfer
from kvmops.site import load_site
from kvmops.transfer import commands as tc
from kvmops.transfer.result import sha256_cmd
from tests.conftest import need_tools
from tests.support.facts import empty_facts
from tests.support.loop import loop_device
from tests.support.sshd import private_sshd
from tests.support.transfer import random_data, sha256_of, ssh_runner

pytestmark = pytest.mark.integration
M = 1 << 20


@pytest.fixture(scope="module")
def ends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SSHRunner, SSHRunner]]:
    """Two SSH endpoints ("src" and "dst"), each its own sshd and host key."""
    need_tools("ssh", "ssh-keygen", "/usr/sbin/sshd", "zstd", "gzip")
    a, b = tmp_path_factory.mktemp("sshd-src"), tmp_path_factory.mktemp("sshd-dst")
    with private_sshd(a) as s1, private_sshd(b) as s2:
        src, dst = ssh_runner(s1), ssh_runner(s2)
        try:
            yield src, dst
        finally:
            src.close()
            dst.close()


def runner_of(ends: tuple[SSHRunner, SSHRunner]):  # type: ignore[no-untyped-def]
    return {"src": ends[0], "dst": ends[1]}.__getitem__


def test_a_file_streams_with_its_sha256_and_progress(ends: tuple[SSHRunner, SSHRunner], tmp_path: Path) -> None:
    size = 20 * M + 12345  # not a whole number of blocks
    want = random_data(tmp_path / "in", size)
    lines: list[str] = []
    got = stream(ends[0], tc.cat(str(tmp_path / "in")), ends[1], tc.dd_file(str(tmp_path / "out")),
                 size=size, what="vdx", progress=lines.append)
    assert (got.bytes, got.sha256) == (size, want)
    assert sha256_of(tmp_path / "out") == want
    assert lines[-1].startswith("vdx: 20.01 MiB in ")
    assert sum("%)," in ln for ln in lines) >= 5 and len(lines) <= 12  # every 10 %: a few lines


def test_block_devices_with_direct_io_both_ends_checked(ends: tuple[SSHRunner, SSHRunner], tmp_path: Path) -> None:
    with loop_device(tmp_path / "a.img", "32M") as a, loop_device(tmp_path / "b.img", "32M") as b:
        want = random_data(Path(a), 32 * M)
        t = Transfer(Endpoint("src", tc.dd_read(a)), Endpoint("dst", tc.dd_write(b)), size=32 * M,
                     verify=(Endpoint("src", sha256_cmd(a)), Endpoint("dst", sha256_cmd(b))), key="vda")
        said: list[str] = []
        done = run_transfer(t, runner_of(ends), said.append)
        assert done.sha256 == want and set(done.sums.values()) == {want} and not done.skipped
        assert sha256_of(b) == want
        again = run_transfer(Transfer(t.source, t.target, t.size, t.verify, reuse=True, key="vda"), runner_of(ends),
                             said.append)
        assert again.skipped and again.bytes == 0  # the target holds the data: nothing streamed
        assert any("nothing streamed" in ln for ln in said)


def test_a_snapshot_is_hashed_in_flight_and_the_target_read_back_once(ends: tuple[SSHRunner, SSHRunner],
                                                                     tmp_path: Path) -> None:
    with loop_device(tmp_path / "a.img", "32M") as a, loop_device(tmp_path / "b.img", "32M") as b:
        want = random_data(Path(a), 32 * M)
        t = Transfer(Endpoint("src", tc.dd_read(a)), Endpoint("dst", tc.dd_write(b)), size=32 * M,
                     verify=(Endpoint("dst", sha256_cmd(b)),), source_sum=Endpoint("src", sha256_cmd(a)), key="vda")
        reads = len(ends[0].records)
        done = run_transfer(t, runner_of(ends), lambda _: None)
        assert done.sha256 == want and set(done.sums.values()) == {want} and sha256_of(b) == want
        assert done.in_flight == (f"src$ openssl dgst -sha256 -r -- {a}",)
        assert [r.command for r in ends[0].records[reads:]] == []  # the source: not read again
        assert [r.command for r in ends[1].records][-1] == f"openssl dgst -sha256 -r -- {b}"
        again = run_transfer(replace(t, reuse=True), runner_of(ends), lambda _: None)
        assert again.skipped and [r.command for r in ends[0].records[reads:]] == [f"openssl dgst -sha256 -r -- {a}"]


def test_a_difference_between_the_ends_is_caught(ends: tuple[SSHRunner, SSHRunner], tmp_path: Path) -> None:
    random_data(tmp_path / "in", 4 * M)
    random_data(tmp_path / "other", 4 * M, seed=8)
    t = Transfer(Endpoint("src", tc.cat(str(tmp_path / "in"))),
                 Endpoint("dst", tc.dd_file(str(tmp_path / "out"))), size=4 * M,
                 verify=(Endpoint("dst", sha256_cmd(str(tmp_path / "other"))),), key="vda")
    with pytest.raises(TransferFailed, match="NOT good"):
        run_transfer(t, runner_of(ends), lambda _: None)


def test_a_failing_source_or_target_is_named(ends: tuple[SSHRunner, SSHRunner], tmp_path: Path) -> None:
    random_data(tmp_path / "in", 2 * M)
    with pytest.raises(CommandFailed) as err:
        stream(ends[0], tc.cat(str(tmp_path / "missing")), ends[1], tc.dd_file(str(tmp_path / "out")))
    assert err.value.argv[:2] == ("cat", "--") and "No such file" in err.value.stderr
    with pytest.raises(CommandFailed) as err:
        stream(ends[0], tc.cat(str(tmp_path / "in")), ends[1], tc.dd_file(str(tmp_path / "no/dir/out")))
    assert "of=" in err.value.argv[1] and "No such file" in err.value.stderr  # the target's error, not a broken pipe
    with pytest.raises(TransferFailed, match="bytes arrived"):
        stream(ends[0], tc.cat(str(tmp_path / "in")), ends[1], tc.dd_file(str(tmp_path / "out")), size=3 * M)


@pytest.mark.parametrize("name", [tc.ZSTD, tc.GZIP])
def test_compressed_to_a_file_and_back_into_a_device(ends: tuple[SSHRunner, SSHRunner], tmp_path: Path,
                                                     name: str) -> None:
    codec = tc.codec(name)
    with loop_device(tmp_path / "a.img", "16M") as a, loop_device(tmp_path / "b.img", "16M") as b:
        raw = random_data(Path(a), 16 * M)
        packed = str(tmp_path / f"vda.raw{codec.suffix}")
        t = Transfer(Endpoint("src", codec.compress(a)), Endpoint("dst", tc.dd_file(packed)),
                     verify=(Endpoint("dst", sha256_cmd(packed)),), measure=(Endpoint("src", sha256_cmd(a)),),
                     key="vda")
        done = run_transfer(t, runner_of(ends), lambda _: None)
        assert done.measured_sha256 == raw and done.sha256 == sha256_of(packed) and done.bytes < 16 * M
        ends[1].run(codec.test(packed))
        back = Transfer(Endpoint("dst", codec.decompress(packed)), Endpoint("src", tc.dd_write(b)), size=16 * M,
                        verify=(Endpoint("src", sha256_cmd(b)),), expect=raw, key="vda")
        assert run_transfer(back, runner_of(ends), lambda _: None).sha256 == raw
        assert sha256_of(b) == raw
        wrong = Transfer(back.source, back.target, back.size, back.verify, expect="0" * 64, key="vda")
        with pytest.raises(TransferFailed, match="manifest"):
            run_transfer(wrong, runner_of(ends), lambda _: None)


@pytest.fixture
def fault(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    faults.reset()
    yield monkeypatch
    faults.reset()


@pytest.mark.parametrize("when", ["before", "after"])
def test_the_executor_records_a_transfer_and_a_fault_fails_it(ends: tuple[SSHRunner, SSHRunner], tmp_path: Path,
                                                             fault: pytest.MonkeyPatch, when: str) -> None:
    want = random_data(tmp_path / "in", 3 * M)
    out = tmp_path / "out"
    t = Transfer(Endpoint("src", tc.cat(str(tmp_path / "in"))), Endpoint("dst", tc.dd_file(str(out))),
                 size=3 * M, verify=(Endpoint("dst", sha256_cmd(str(out))),), key="vda")
    host = Host(load_site(), ends[1], "test:///default")
    peers = {"src": Host(load_site(), ends[0], "test:///default"), "dst": host}
    ex = Executor(host, lambda _: None, peers=peers,
                  places={"src": str(tmp_path), "dst": str(tmp_path)})  # the ends: files in a folder of the run
    fault.setenv(faults.FAULT_MATCH_ENV, r"^src\$ cat ")
    fault.setenv(faults.FAULT_AT_ENV, "1")
    fault.setenv(faults.FAULT_WHEN_ENV, when)
    facts = empty_facts(host.site)  # the plan was made from no facts; the gate judges the stream's ends
    with pytest.raises(StepFailed, match="injected fault"):
        ex.execute(Plan("copy").add("stream", t), facts=facts)
    assert out.exists() is (when == "after")  # before: nothing ran; after: it ran, then failed
    assert [r.returncode for r in ends[1].records if r.command == t.display][-1] == faults.FAULT_EXIT
    assert not ex.transferred
    fault.delenv(faults.FAULT_AT_ENV)
    ex.execute(Plan("copy").add("stream", t), facts=facts)  # the same plan again converges
    assert sha256_of(out) == want and [x.sha256 for x in ex.transferred] == [want]
    assert [r.returncode for r in ends[1].records if r.command == t.display][-1] == 0


def test_plan_mode_records_a_transfer_and_runs_nothing(ends: tuple[SSHRunner, SSHRunner], tmp_path: Path) -> None:
    from kvmops.runners import PlanRunner

    t = Transfer(Endpoint("src", tc.cat("/etc/hostname")), Endpoint("dst", tc.dd_file(str(tmp_path / "x"))))
    plan_runner = PlanRunner(ends[1])
    host = Host(load_site(), plan_runner, "test:///default")
    ends_are_places = {"src": "/etc", "dst": str(tmp_path)}  # the ends: files in the run's folders
    peers = {"src": Host(load_site(), ends[0], "test:///default"), "dst": host}
    ex = Executor(host, lambda _: None, peers=peers, places=ends_are_places)
    lines = ex.execute(Plan("p").add("s", t), facts=empty_facts(host.site))
    assert lines == ["1. planned: s"] and not (tmp_path / "x").exists()
    assert [(r.command, r.executed) for r in plan_runner.records] == [(t.display, False)]
    assert os.path.exists("/etc/hostname")


def test_a_manifest_is_signed_on_the_source_into_the_place_and_verifies(ends: tuple[SSHRunner, SSHRunner],
                                                                         tmp_path: Path) -> None:
    """lv-backup's signing step: the manifest goes in on the source's ssh-keygen stdin over SSH,
    the signature streams into the place's file, checked there; it verifies against allowed
    signers naming the source's key, and not once the manifest changed."""
    import subprocess

    from kvmops.facts.signing import verify_text
    from kvmops.transfer import signing
    from tests.support.secrets import register_key

    key = tmp_path / "kvm1"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kvm1", "-f", str(key)], check=True)
    register_key(key.read_text())
    allowed = tmp_path / "allowed_signers"
    allowed.write_text("kvm1 " + " ".join(key.with_suffix(".pub").read_text().split()[:2]) + "\n")
    text = '{"format": 1, "guest": "g1"}\n' * 50
    sig = tmp_path / "place" / "manifest.json.sig"
    sig.parent.mkdir()
    t = Transfer(Endpoint("src", signing.sign_cmd(str(key), text)), Endpoint("dst", tc.dd_file(str(sig))),
                 verify=(Endpoint("dst", sha256_cmd(str(sig))),), key="manifest.json.sig")
    done = run_transfer(t, runner_of(ends), lambda _line: None)
    assert done.sha256 == sha256_of(sig) and sig.read_text().startswith("-----BEGIN SSH SIGNATURE-----")
    good = verify_text(text, sig.read_text(), str(allowed), "kvm1")
    assert good.state == signing.GOOD and "kvm1 with ED25519 key" in good.detail
    assert verify_text(text + " ", sig.read_text(), str(allowed), "kvm1").state == signing.BAD
    assert verify_text(text, sig.read_text(), str(allowed), "kvm2").state == signing.BAD
