"""The backup engine (BorgBackup) as a backup place: its commands and plans (pure), what the
gate and the tests' oracle make of them, and real repositories in a temporary folder driven
through the one executor (real borg on files standing in for the disks; no mocks)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kvmops.errors import ConfigError, InvalidInput, KvmopsError, SafetyError
from kvmops.executor import Executor, Refused, confirmed
from kvmops.facts.engine import read_repo
from kvmops.facts.place import verify_backups
from kvmops.host import Host
from kvmops.plan import Plan
from kvmops.procedures import lv_backup_restore as rs
from kvmops.procedures.base import PreconditionFailed
from kvmops.runners.local import LocalRunner
from kvmops.safety.effects import REPO_ADD, REPO_PRUNE, UNKNOWN, Where, effects
from kvmops.safety.rules import Context, RunState, judge
from kvmops.site import load_site, resolve_site
from kvmops.transfer import engine as en
from kvmops.transfer.manifest import ENGINE_FORMAT, Manifest, ManifestError, parse_manifest
from kvmops.transfer.place import Backup, PlaceFacts
from tests.support import oracle_effects, plan_safety
from tests.unit import test_lv_backup as tlb

pytestmark = pytest.mark.skipif(shutil.which("borg") is None, reason="borg is not installed (scripts/bootstrap)")

WHEN = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
STAMP = "20261201T020000Z"
MiB = 1 << 20


# -- pure: names, repositories, retention ------------------------------------------------------


def test_archive_names_are_kvmops_own() -> None:
    assert en.archive_name("web1", STAMP) == "web1-20261201T020000Z"
    assert en.verdict_name("web1", STAMP, "20261202T031500Z") == "web1-20261201T020000Z.verified-20261202T031500Z"
    got = en.parse_archive("web1-20261201T020000Z.verified-20261202T031500Z")
    assert got is not None and (got.guest, got.stamp, got.verified) == ("web1", STAMP, "20261202T031500Z")
    for other in ("web1.checkpoint", "web1-2026", "../x-20261201T020000Z", "-x-20261201T020000Z"):
        assert en.parse_archive(other) is None
    with pytest.raises(InvalidInput, match="GUEST-YYYYMMDDTHHMMSSZ"):
        en.archive_name_ok("web1::x")


@pytest.mark.parametrize("url", ["", "relative/dir", "/srv/../etc", "/", "ssh://u@h/x;rm", "ssh://h:70000/x",
                                 "/srv/repo with space", "file:///srv/repo"])
def test_bad_repositories_are_refused_by_name(url: str) -> None:
    with pytest.raises(InvalidInput, match="repository"):
        en.parse_repo(url, "/root/.borg-pass")


def test_repositories_local_and_over_ssh() -> None:
    assert en.parse_repo(" /srv/kvmops-borg ", "/root/p").url == "/srv/kvmops-borg"
    r = en.parse_repo("ssh://backup@place:2222/./kvmops", "/root/p", "/root/.ssh/id_backup")
    assert r.remote and dict(en.env(r))["BORG_RSH"].endswith("-i /root/.ssh/id_backup -o IdentitiesOnly=yes")
    with pytest.raises(InvalidInput, match="passphrase"):
        en.parse_repo("/srv/r", "")
    with pytest.raises(InvalidInput, match="absolute path"):
        en.parse_repo("/srv/r", "pass.txt")


def test_the_passphrase_never_is_in_an_argv_or_a_display() -> None:
    r = en.parse_repo("/srv/r", "/root/p")
    cmd = en.create(r, en.archive_name("web1", STAMP), WHEN, ["/dev/vg0/snap"], en.seal("{}", ""))
    assert dict(cmd.env)["BORG_PASSCOMMAND"] == "cat -- /root/p"
    assert "/root/p" not in cmd.display() and not {"BORG_PASSPHRASE", "BORG_NEW_PASSPHRASE"} & dict(cmd.env).keys()


@pytest.mark.parametrize(("text", "args"), [("3", ["--keep-last", "3"]), ("daily=7, weekly=4",
                                                                         ["--keep-daily", "7", "--keep-weekly", "4"])])
def test_retention_is_borgs_keep_flags(text: str, args: list[str]) -> None:
    assert en.parse_keep(text).args() == args


@pytest.mark.parametrize("text", ["last=1,last=2", "yearly=1", "last=-1", "last=x", True])
def test_bad_retention_is_refused(text: object) -> None:
    with pytest.raises(InvalidInput, match="retention"):
        en.parse_keep(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["[" * 100 + "]" * 100, '{"manifest": "m"}', '{"manifest": 1, "signature": ""}',
                                  "x" * (9 << 20)], ids=["deep", "no-signature", "not-text", "huge"])
def test_a_sealed_manifest_is_parsed_bounded(text: str) -> None:
    with pytest.raises(KvmopsError, match="repo::a"):
        en.unseal(text, "repo::a")


# -- the gate and the oracle ---------------------------------------------------------------------


REPO = en.parse_repo("/srv/kvmops-borg", "/root/p")


def _effects(plan: Plan) -> list[tuple[str, str, object]]:
    found = effects(plan.steps, Where("kvm1", "vg0", lambda _p: None, {}))
    return [(e.action, e.obj, e.detail) for e in found]


def _oracle(plan: Plan) -> list[tuple[str, str, object]]:
    out: list[tuple[str, str, object]] = []
    for s in plan.steps:
        assert s.cmd is not None
        out += oracle_effects._borg(s.cmd.argv) or [(UNKNOWN, s.cmd.display(), None)]
    return out


def test_gate_and_oracle_name_what_each_borg_command_does() -> None:
    plans = [en.init_plan(REPO), en.backup_plan(REPO, "web1", STAMP, WHEN, ["/dev/vg0/web1-snap"], "{}"),
             en.verdict_plan(REPO, "web1", STAMP, "20261202T031500Z", "{}"), en.prune_plan(REPO, "web1", en.Keep(3))]
    got = [e for p in plans for e in _effects(p)]
    assert got == [(REPO_ADD, REPO.url, None)] * 3 + [(REPO_PRUNE, REPO.url, "web1"), (REPO_ADD, REPO.url, None)]
    assert [e for p in plans for e in _oracle(p)] == got


@pytest.mark.parametrize("argv", [("borg", "delete", "/srv/r"), ("borg", "prune", "--keep-last", "1", "/srv/r"),
                                  ("borg", "prune", "--glob-archives", "*", "--keep-last", "1", "/srv/r"),
                                  ("borg", "prune", "--glob-archives", "web1-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T"
                                   "[0-9][0-9][0-9][0-9][0-9][0-9]Z", "-P", "x", "--keep-last", "1", "/srv/r"),
                                  ("borg", "recreate", "/srv/r"), ("borg", "key", "change-passphrase", "/srv/r"),
                                  ("borg", "create", "--content-from-command", "/srv/r::a", "--", "sh", "-c", "x"),
                                  ("borg", "create", "--paths-from-command", "/srv/r::a", "--", "sh"),
                                  ("borg", "init", "--rsh", "sh -c x", "/srv/r"),
                                  ("borg", "compact", "--remote-path", "/tmp/x", "/srv/r"),
                                  ("borg", "create", "/srv/r::a", "relative/path")])
def test_other_changing_borg_commands_are_unknown_to_both(argv: tuple[str, ...]) -> None:
    plan = Plan("x").add("x", en._cmd(REPO, en.Kind.CHANGE, *argv[1:]))
    assert [a for a, _o, _d in _effects(plan)] == [UNKNOWN]
    assert [a for a, _o, _d in _oracle(plan)] == [UNKNOWN]


def test_the_oracle_refuses_a_repository_the_run_was_not_given() -> None:
    eff = plan_safety.Effect(REPO_PRUNE, REPO.url, None, "web1")
    assert [r for r, _ in plan_safety._check_repo(eff)] == ["files", "confirm"]


# -- real repositories, through the executor -------------------------------------------------------


@dataclass
class Bed:
    tmp: Path
    repo: en.Repo
    run: Executor  # a place executor on this machine whose place is the repository
    disks: list[Path]

    def execute(self, plan: Plan, *targets: str) -> list[str]:
        return self.run.execute(plan, confirmed(",".join(targets)) if targets else frozenset())

    def borg(self, *argv: str, stdin: str | None = None) -> str:
        env = {**os.environ, **dict(en.env(self.repo))}
        return subprocess.run(("borg", *argv), env=env, input=stdin, capture_output=True, text=True,
                              check=True).stdout

    def archives(self) -> list[str]:
        return [a.name for a in en.parse_list(self.borg("list", "--json", self.repo.url), "test")]

    def backup(self, stamp: str) -> None:
        sealed = en.seal(json.dumps({"guest": "web1", "stamp": stamp}), "-----BEGIN SSH SIGNATURE-----\n")
        self.execute(en.backup_plan(self.repo, "web1", stamp, WHEN, [str(d) for d in self.disks], sealed))

    def extract(self, archive: str, item: str) -> bytes:
        env = {**os.environ, **dict(en.env(self.repo))}
        cmd = en.extract(self.repo, archive, item)
        return subprocess.run(cmd.argv, env=env, capture_output=True, check=True).stdout

    def stored(self, archive: str) -> int:
        """Bytes only this archive holds in the repository (borg's deduplicated size): what it
        added, while it is the newest."""
        info = json.loads(self.borg("info", "--json", self.repo.archive(archive)))
        return int(info["archives"][0]["stats"]["deduplicated_size"])

    def size(self) -> int:
        return sum(f.stat().st_size for f in Path(self.repo.url).rglob("*") if f.is_file())


def _host(name: str) -> Host:
    site = replace(load_site(resolve_site("demo")), name=name, recorded=False)
    return Host(site, LocalRunner(name), "test:///default")


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    (tmp_path / "pass").write_text("test-only-passphrase\n")
    (tmp_path / "pass").chmod(0o600)
    repo = en.parse_repo(str(tmp_path / "repo"), str(tmp_path / "pass"), base_dir=str(tmp_path / "borg"))
    disks = [tmp_path / "vda", tmp_path / "vdb"]
    for i, d in enumerate(disks):  # 16 MiB of seeded data that compression cannot shrink (dedup only)
        d.write_bytes(b"".join(hashlib.sha256(b"%d-%d" % (i, n)).digest() for n in range(16 * MiB // 32)))
    host = _host("kvm1")
    run = Executor(host, lambda _l: None, places={"kvm1": repo.url}, place=True)
    b = Bed(tmp_path, repo, run, disks)
    b.execute(en.init_plan(repo))
    yield b


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_backup_is_one_archive_with_the_disks_and_the_sealed_manifest(bed: Bed) -> None:
    bed.backup(STAMP)
    name = en.archive_name("web1", STAMP)
    assert bed.archives() == [name]
    items = {i.path: i.size for i in en.parse_items(bed.borg("list", "--json-lines", bed.repo.archive(name)), "t")}
    disk_items = [en.device_item(str(d)) for d in bed.disks]
    assert {en.MANIFEST_ITEM, *disk_items} <= set(items)
    for d, item in zip(bed.disks, disk_items, strict=True):
        assert _sha(bed.extract(name, item)) == _sha(d.read_bytes())
    manifest, signature = en.unseal(bed.extract(name, en.MANIFEST_ITEM).decode(), name)
    assert json.loads(manifest) == {"guest": "web1", "stamp": STAMP}
    assert signature.startswith("-----BEGIN SSH SIGNATURE-----")


def test_a_second_backup_stores_only_what_changed(bed: Bed) -> None:
    bed.backup(STAMP)
    first = bed.stored(en.archive_name("web1", STAMP))
    with bed.disks[0].open("r+b") as f:  # 256 KiB of new (seeded, incompressible) data in vda
        f.seek(3 * MiB)
        f.write(b"".join(hashlib.sha256(b"new-%d" % n).digest() for n in range(8192)))
    bed.backup("20261202T020000Z")
    second = bed.stored(en.archive_name("web1", "20261202T020000Z"))
    # The change renews the one or two chunks of vda it falls in, none of vdb's. Chunk boundaries
    # depend on the repository's random chunker seed: a chunk is at most 8 MiB (borg's default
    # 2^23), so at most 16 MiB is stored again, of the 32 MiB the first backup stored.
    assert first > 30 * MiB and second <= 2 * (8 * MiB) + MiB
    assert _sha(bed.extract(en.archive_name("web1", "20261202T020000Z"), en.device_item(str(bed.disks[0])))) \
        == _sha(bed.disks[0].read_bytes())


def test_prune_keeps_the_newest_of_one_guest_only(bed: Bed) -> None:
    for day in ("01", "02", "03"):
        bed.backup(f"202612{day}T020000Z")
    bed.execute(en.verdict_plan(bed.repo, "web1", "20261203T020000Z", "20261203T050000Z", '{"booted": true}'))
    bed.borg("create", "--stdin-name", "x", f"{bed.repo.url}::web10-20261201T020000Z", "-", stdin="other guest")
    bed.execute(en.prune_plan(bed.repo, "web1", en.Keep(last=1)), "web1")
    assert sorted(bed.archives()) == ["web1-20261203T020000Z", "web1-20261203T020000Z.verified-20261203T050000Z",
                                      "web10-20261201T020000Z"]


def test_a_prune_without_its_guest_confirmed_is_not_run(bed: Bed) -> None:
    bed.backup(STAMP)
    with pytest.raises(Exception, match="confirm"):
        bed.execute(en.prune_plan(bed.repo, "web1", en.Keep(last=1)))
    assert bed.archives() == [en.archive_name("web1", STAMP)]


def test_the_gate_refuses_another_repository(bed: Bed, tmp_path: Path) -> None:
    other = replace(bed.repo, url=str(tmp_path / "other"))
    with pytest.raises(Refused, match=r"(?s)not this run's.*\[rule files\]"):
        bed.execute(en.init_plan(other))
    assert not (tmp_path / "other").exists()


def test_an_append_only_repository_keeps_what_a_host_prunes(bed: Bed) -> None:
    """The place's owner sets append-only (``borg config REPO append_only 1``, or the SSH forced
    command ``borg serve --append-only``): the host's prune and compact hide archives from the
    list but free nothing, so the owner can roll the repository back."""
    bed.backup(STAMP)
    bed.backup("20261202T020000Z")
    bed.borg("config", bed.repo.url, "append_only", "1")
    before = bed.size()
    bed.execute(en.prune_plan(bed.repo, "web1", en.Keep(last=1)), "web1")
    assert bed.archives() == ["web1-20261202T020000Z"]
    assert bed.size() >= before  # every segment is still there: nothing was deleted


# -- restores: format 2 beside format 1 ----------------------------------------------------------


def _engine_backup(xml: str = "") -> tuple[Backup, Manifest]:
    """web1's signed demo backup (format 1) as borg would hold it (format 2, unsigned here)."""
    old = rs.choose(tlb.CHECKED, "web1")
    assert old.manifest is not None
    m = replace(old.manifest, format=ENGINE_FORMAT, engine="borg", archive=en.archive_name("web1", old.stamp),
                disks=tuple(replace(d, file=f"dev/vg_guests/{d.lv}-snap", compressed_sha256=d.sha256)
                            for d in old.manifest.disks), xml=xml or old.manifest.xml)
    archive = en.parse_archive(m.archive)
    assert archive is not None
    return en.backup_of(archive, en.seal(m.to_json(), ""), {d.file for d in m.disks} | {en.MANIFEST_ITEM}), m


def test_an_engine_manifest_reads_back_and_names_its_own_archive_only() -> None:
    b, m = _engine_backup()
    assert b.complete and b.manifest == m and parse_manifest(m.to_json(), "m") == m
    for bad in (replace(m, archive="web1-20261202T020000Z"), replace(m, engine="restic"),
                replace(m, disks=(replace(m.disks[0], file="dev/../etc/shadow"),)),
                replace(m, disks=(replace(m.disks[0], compressed_sha256="c" * 64),))):
        with pytest.raises(ManifestError):
            parse_manifest(bad.to_json(), "m")
    archive = en.parse_archive(m.archive)
    assert archive is not None
    assert "missing" in en.backup_of(archive, en.seal(m.to_json(), ""), {en.MANIFEST_ITEM}).problem
    assert "another backup" in en.backup_of(replace(archive, name="web1-20261202T020000Z", stamp="20261202T020000Z"),
                                            en.seal(m.to_json(), ""), {m.disks[0].file}).problem
    assert "does not read back" in en.backup_of(archive, "[" * 50 + "]" * 50).problem
    assert not en.backup_of(archive, None).complete


def test_an_engine_backup_restores_through_borg_extract_and_its_definition_passes_the_gate() -> None:
    b, m = _engine_backup()
    c = rs.Ctx(tlb.target(), PlaceFacts(en.place_of(REPO, "demo"), True, (b,)), repo=REPO)
    lvs, disk, define = rs.procedure(c, b, new_name="web1-copy", define=True).preview
    t = disk.steps[0].transfer
    assert t is not None and t.expect == m.disks[0].sha256
    assert t.source.cmd.argv == ("borg", "extract", "--stdout", f"{REPO.url}::{m.archive}", m.disks[0].file)
    assert t.source.host == "demo" and not t.source.cmd.mutates
    assert t.target.cmd.argv[:2] == ("dd", "of=/dev/rl_build/vmweb1-copy")
    ctx = Context(facts={"demo": c.target})
    where = Where("demo", c.target.site.vg, lambda _p: None, {})
    found = judge(effects([*lvs.steps, *disk.steps, *define.steps], where), ctx, RunState())
    assert found == []
    with pytest.raises(PreconditionFailed, match="borg repository: name it"):
        rs.procedure(replace(c, repo=None), b)


def test_an_engine_backups_hostile_definition_is_refused_by_the_xml_policy() -> None:
    b, m = _engine_backup()
    evil = m.xml.replace("</devices>", "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='1' "
                                       "slot='0' function='0'/></source></hostdev></devices>")
    b, m = _engine_backup(evil)
    c = rs.Ctx(tlb.target(), PlaceFacts(en.place_of(REPO, "demo"), True, (b,)), repo=REPO)
    define = rs.procedure(c, b, new_name="web1-copy", define=True).preview[2]
    refusals = judge(effects(define.steps, Where("demo", c.target.site.vg, lambda _p: None, {})),
                     Context(facts={"demo": c.target}), RunState())
    assert "xml-policy" in {r.rule for r in refusals} and any("hostdev" in r.why for r in refusals)


def test_an_old_format_backup_still_restores_from_its_folder() -> None:
    old = rs.choose(tlb.CHECKED, "web1")
    assert old.manifest is not None and old.manifest.format == 1
    disk = rs.procedure(rs.Ctx(tlb.target(), tlb.PLACE_FACTS), old).preview[1]
    t = disk.steps[0].transfer
    assert t is not None and t.source.host == "demo2" and t.source.cmd.argv[0] in ("zstd", "gzip")


def test_a_repository_is_read_back_as_backups(bed: Bed) -> None:
    """Real borg: a complete backup, one whose manifest names another archive, one without a
    manifest; the unsigned one is refused for a restore unless the operator allows it."""
    _b, m = _engine_backup()
    items = [str(d) for d in bed.disks]
    m = replace(m, disks=(replace(m.disks[0], file=en.device_item(items[0]), sha256=_sha(bed.disks[0].read_bytes()),
                                  compressed_sha256=_sha(bed.disks[0].read_bytes())),))
    bed.execute(en.backup_plan(bed.repo, "web1", m.stamp, WHEN, items[:1], en.seal(m.to_json(), "")))
    later = "20261230T020000Z"
    bed.execute(en.backup_plan(bed.repo, "web1", later, WHEN, items[:1], en.seal(m.to_json(), "")))
    bed.borg("create", f"{bed.repo.url}::web1-20261231T020000Z", str(bed.disks[1]))
    facts = read_repo(bed.repo, bed.run.host, "web1")
    got = {b.stamp: (b.complete, b.problem) for b in facts.backups}
    assert got == {m.stamp: (True, ""), later: (False, "its manifest names another backup"),
                   "20261231T020000Z": (False, f"no {en.MANIFEST_ITEM} in the archive (not a backup kvmops finished)")}
    checked = verify_backups(facts, tlb.DEMO, "web1")
    with pytest.raises(SafetyError, match="not trusted"):
        rs.choose(checked, "web1")
    assert rs.choose(checked, "web1", allow_unsigned=True).manifest == m
    assert not read_repo(replace(bed.repo, url=str(bed.tmp / "none")), bed.run.host, "web1").exists


def test_a_hosts_key_with_the_append_only_forced_command_cannot_delete(bed: Bed) -> None:
    """The place's ``authorized_keys`` gives the host's key ``command="borg serve --append-only
    --restrict-to-path DIR"`` (here a stand-in for ssh runs exactly that, whatever the client
    asks). Through it, kvmops' own prune and compact, a ``borg delete`` of the whole repository
    and another path all fail to free or reach anything: every segment stays."""
    bed.backup(STAMP)
    bed.backup("20261202T020000Z")
    forced = bed.tmp / "ssh"
    forced.write_text(f"#!/bin/sh\nexec borg serve --append-only --restrict-to-path {bed.repo.url}\n")
    forced.chmod(0o700)
    remote = replace(bed.repo, url=f"ssh://place{bed.repo.url}")
    env = {**os.environ, **dict(en.env(remote)), "BORG_RSH": str(forced), "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
           "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING": "YES"}
    segments = sorted(p.name for p in Path(bed.repo.url, "data").rglob("*") if p.is_file())
    before = bed.size()
    for cmd in (en.prune(remote, "web1", en.Keep(last=1)), en.compact(remote)):
        subprocess.run(cmd.argv, env=env, capture_output=True, check=True, timeout=120)
    subprocess.run(("borg", "delete", remote.url), env=env, capture_output=True, timeout=120)
    other = subprocess.run(("borg", "list", f"ssh://place{bed.tmp}/other"), env=env, capture_output=True, text=True,
                           timeout=120)
    assert other.returncode != 0 and "not allowed" in other.stderr
    assert set(segments) <= {p.name for p in Path(bed.repo.url, "data").rglob("*") if p.is_file()}
    assert bed.size() >= before


def test_a_site_names_its_repository(tmp_path: Path) -> None:
    from tests.unit.test_site import write

    site = load_site(str(write(tmp_path, '[backup]\nrepository = "ssh://kvmops@place/srv/kvmops-borg/h"\n'
                                         'passphrase_file = "/root/.config/kvmops/borg-pass"\n'
                                         'repository_ssh_key = "/root/.ssh/id_kvmops_borg"\n')))
    repo = en.repo_of(site)
    assert (repo.url, repo.passphrase_file, repo.ssh_key) == ("ssh://kvmops@place/srv/kvmops-borg/h",
                                                              "/root/.config/kvmops/borg-pass",
                                                              "/root/.ssh/id_kvmops_borg")
    with pytest.raises(InvalidInput, match=r"\[backup\] repository"):
        en.repo_of(load_site(str(write(tmp_path, ""))))
    for bad in ('repository = "srv/x"', 'repository = "/srv/x y"', 'passphrase_file = "pass"'):
        with pytest.raises(ConfigError, match="backup"):
            load_site(str(write(tmp_path, f"[backup]\n{bad}\n")))
