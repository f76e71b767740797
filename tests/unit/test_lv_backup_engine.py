"""lv-backup into a BorgBackup repository: the stages previewed from the demo's recorded facts
and judged by the gate; the signed manifest sealed from each disk's real sha256 and stored by
real borg in a tmp repository, read back complete and verified against its signer."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from kvmops.errors import KvmopsError
from kvmops.executor import Executor, Refused
from kvmops.facts.engine import read_repo
from kvmops.facts.signing import verify_text
from kvmops.host import Host, connect
from kvmops.plan import Plan
from kvmops.procedures import lv_backup_engine as be
from kvmops.procedures.base import PreconditionFailed
from kvmops.procedures.stages import Stage, Staged, run_on
from kvmops.runners.local import LocalRunner
from kvmops.transfer import engine as en
from kvmops.transfer.manifest import ENGINE_FORMAT, parse_manifest
from kvmops.transfer.place import PlaceFacts
from tests.unit import test_lv_backup as tlb

WHEN, STAMP = tlb.WHEN, "20261201T020000Z"
MiB = 1 << 20


@dataclass
class Bed:
    tmp: Path
    repo: en.Repo
    host: Host  # this machine, as the source host (its site the demo's)
    key: Path
    disk: Path


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    (tmp_path / "pass").write_text("test-only-passphrase\n")
    (tmp_path / "pass").chmod(0o600)
    repo = en.parse_repo(str(tmp_path / "repo"), str(tmp_path / "pass"), base_dir=str(tmp_path / "borg"))
    key = tmp_path / "signing"
    subprocess.run(("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "demo", "-f", str(key)), check=True)
    disk = tmp_path / "vminflux-snap"
    disk.write_bytes(b"".join(hashlib.sha256(b"%d" % n).digest() for n in range(4 * MiB // 32)))
    host = Host(replace(tlb.DEMO, recorded=False, signing_key=str(key)), LocalRunner("demo"), "test:///default")
    Executor(host, lambda _l: None, places={"demo": repo.url}, place=True).execute(en.init_plan(repo), frozenset())
    yield Bed(tmp_path, repo, host, key, disk)


def ctx(bed: Bed, place: PlaceFacts | None = None) -> be.Ctx:
    source = replace(tlb.SOURCE, site=replace(tlb.SOURCE.site, signing_key=str(bed.key)),
                     paths={**tlb.SOURCE.paths, str(bed.key): True})
    return be.Ctx(source, bed.repo, place or read_repo(bed.repo, bed.host, "influx"))


def test_the_stages_are_previewed_and_judged_by_the_gate(bed: Bed) -> None:
    c = ctx(bed)
    staged = be.procedure(c, bed.host, "influx", WHEN, keep=en.parse_keep("last=3"))
    plans = {s.title: p for s, p in zip(staged.stages, staged.preview, strict=True)}
    assert [s.title for s in staged.stages] == ["shut the guest down for the snapshot", "snapshot its disks",
                                                "start the guest again", "make the archive", "remove the snapshots",
                                                "retention", "start the guest again"]
    (create,) = [s.cmd for s in plans["make the archive"].steps if s.cmd is not None]
    assert create.argv[:2] == ("borg", "create") and "--read-special" in create.argv
    assert create.argv[-2:] == ("-", "/dev/rl_build/vminflux-20261201T0200Z")
    assert create.argv[-3] == f"{bed.repo.url}::influx-{STAMP}" and create.stdin is not None
    text, signature = en.unseal(create.stdin, "preview")
    assert signature == be.PENDING_SIGNATURE and f'"archive": "influx-{STAMP}"' in text
    assert [s.target for s in plans["retention"].steps] == ["influx", None]
    assert staged.stages[3].prepare is not None  # the sums and the signature are read just before
    # plan mode: every stage's preview walks the executor, judged against the source's facts and this repository
    host = connect(tlb.DEMO)
    try:
        ran = run_on({be.SOURCE: host}, staged, lambda _ex: c, repos={be.SOURCE: bed.repo.url})
    finally:
        host.close()
    assert f"[source] 1. planned: one archive influx-{STAMP}: 1 disk(s) and the signed manifest; only chunks the " \
        "repository lacks are stored" in ran.lines
    assert "[source] 1. planned: borg prune: influx's older backups go (keep last=3)" in ran.lines


def test_another_repository_is_refused_by_the_gate(bed: Bed) -> None:
    c = ctx(bed)
    staged = be.procedure(c, bed.host, "influx", WHEN)
    host = connect(tlb.DEMO)
    try:
        with pytest.raises(KvmopsError, match="not this run's"):
            run_on({be.SOURCE: host}, staged, lambda _ex: c, repos={be.SOURCE: "/srv/another-repo"})
    finally:
        host.close()


def test_no_backup_without_a_repository_or_a_signed_manifest(bed: Bed) -> None:
    with pytest.raises(PreconditionFailed, match="does not exist"):
        be.check(ctx(bed, PlaceFacts(en.place_of(bed.repo, "demo"), False)), "influx", restart=False)
    after = be._after(ctx(bed), "influx", WHEN)
    with pytest.raises(KvmopsError, match="not signed"):
        be._create(after, "influx", STAMP, WHEN)


def test_the_archive_holds_the_disk_and_its_signed_manifest_with_the_real_sha256(bed: Bed) -> None:
    after = be._after(ctx(bed), "influx", WHEN)
    devices = {"vda": str(bed.disk)}
    sealed = be.seal_backup(lambda cmd: bed.host.runner.run(cmd).stdout, after, "influx", STAMP, WHEN, devices)
    digest = hashlib.sha256(bed.disk.read_bytes()).hexdigest()
    assert sealed.sums == {"vda": digest}
    ex = Executor(bed.host, lambda _l: None, places={"demo": bed.repo.url}, place=True)
    ex.execute(en.backup_plan(bed.repo, "influx", STAMP, WHEN, devices.values(), sealed.sealed), frozenset())
    (b,) = read_repo(bed.repo, bed.host, "influx").of("influx")
    assert b.complete and b.manifest is not None and b.manifest.format == ENGINE_FORMAT
    (d,) = b.manifest.disks
    assert (d.dev, d.lv, d.file, d.sha256) == ("vda", "vminflux", en.device_item(str(bed.disk)), digest)
    allowed = bed.tmp / "allowed"
    allowed.write_text("demo " + (bed.key.with_suffix(".pub")).read_text())
    assert verify_text(b.text, b.signature, str(allowed), "demo").good
    assert not verify_text(b.text.replace(digest, "0" * 64), b.signature, str(allowed), "demo").good
    data = subprocess.run(en.extract(bed.repo, f"influx-{STAMP}", d.file).argv, capture_output=True,
                          env=dict(en.env(bed.repo)) | {"PATH": "/usr/bin:/bin"}, check=True).stdout
    assert hashlib.sha256(data).hexdigest() == digest
    verdict = be.verify(replace(after, place=read_repo(bed.repo, bed.host, "influx"),
                                source=ctx(bed).source), "influx", STAMP)
    assert verdict.ok, verdict


def test_a_sealed_manifest_for_other_snapshots_is_refused(bed: Bed) -> None:
    after = be._after(ctx(bed), "influx", WHEN)
    sealed = be.seal_backup(lambda cmd: bed.host.runner.run(cmd).stdout, after, "influx", STAMP, WHEN,
                            {"vda": str(bed.disk)})
    with pytest.raises(PreconditionFailed, match="snapshots changed"):
        be._create(sealed, "influx", STAMP, WHEN)
    text, _ = en.unseal(sealed.sealed, "t")
    assert parse_manifest(text, "t").archive == f"influx-{STAMP}"


def test_a_stage_reads_the_sums_and_the_signature_then_its_plan_runs_through_the_executor(bed: Bed) -> None:
    """The archive's stage as lv-backup runs it (apply mode, on this machine): ``prepare`` reads,
    the plan holds the sealed manifest, the executor runs ``borg create`` after the gate."""
    devices = {"vda": str(bed.disk)}
    after = be._after(ctx(bed), "influx", WHEN)
    seen: list[be.Ctx] = []

    def prepare(c: be.Ctx) -> be.Ctx:
        sealed = be.seal_backup(lambda cmd: bed.host.runner.run(cmd).stdout, c, "influx", STAMP, WHEN, devices)
        seen.append(sealed)
        return sealed

    staged: Staged[be.Ctx] = Staged("t", facts_of=lambda c, _side: c.source)
    staged.add(Stage("make the archive", be.SOURCE, lambda c: en.backup_plan(c.repo, "influx", STAMP, WHEN,
                                                                            devices.values(), c.sealed),
                     prepare=prepare), en.backup_plan(bed.repo, "influx", STAMP, WHEN, devices.values(), "{}"))
    ran = run_on({be.SOURCE: bed.host}, staged, lambda _ex: after, repos={be.SOURCE: bed.repo.url})
    assert len(seen) == 1 and ran.lines[0].startswith("[source] 1. done: one archive")
    (b,) = read_repo(bed.repo, bed.host, "influx").of("influx")
    assert b.complete and b.text == en.unseal(seen[0].sealed, "t")[0]
    with pytest.raises(Refused):  # another repository than the run's: refused before anything runs
        run_on({be.SOURCE: bed.host}, staged, lambda _ex: after, repos={be.SOURCE: str(bed.tmp / "other")})
    assert not (bed.tmp / "other").exists()


def test_a_run_reads_the_repository_once_and_the_hosts_facts_before_each_stage(
        bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    source = ctx(bed).source
    reads: list[str] = []
    monkeypatch.setattr(be, "read_facts", lambda host, wanted: reads.append(host.name) or source)
    staged: Staged[be.Ctx] = Staged("t", facts_of=lambda c, _side: c.source)
    for title in ("one", "two", "three"):
        staged.add(Stage(title, be.SOURCE, lambda _c: Plan("nothing").noop("nothing to do")), Plan("nothing"))
    before = len(bed.host.runner.records)
    be.run(bed.host, bed.repo, staged, "influx")
    lists = [r.command for r in bed.host.runner.records[before:] if r.command.startswith("borg list --json ")]
    assert reads == ["demo"] * 3 and len(lists) == 1
