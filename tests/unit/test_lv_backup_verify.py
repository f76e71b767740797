"""lv-backup-verify over the demo's recorded facts: the scratch restore (no network, started,
boot verdict) and its cleanup on every path out, walked through the executor in plan mode (the
gate judges every stage, the definition by the XML policy)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from kvmops.cli.main import main
from kvmops.executor import Executor, Refused
from kvmops.facts.engine import guests_in_repo, read_repo
from kvmops.facts.place import place_host
from kvmops.guests.xml import read_domain
from kvmops.host import connect
from kvmops.hostfacts import Wanted
from kvmops.lvm.facts import LV
from kvmops.plan import Wait
from kvmops.procedures import lv_backup_engine as be
from kvmops.procedures import lv_backup_restore as rs
from kvmops.procedures import lv_backup_verify as vf
from kvmops.procedures.base import PreconditionFailed, Verdict
from kvmops.procedures.stages import run_on
from kvmops.transfer import engine as en
from kvmops.transfer.place import Backup
from tests.unit.test_lv_backup import CHECKED, DEMO, PLACE, PLACE_FACTS, G, commands, demo_facts
from tests.unit.test_lv_backup_engine import STAMP, WHEN, Bed, bed  # noqa: F401 (the fixture)
from tests.unit.test_lv_backup_engine import ctx as engine_ctx

SCRATCH = "influx-verify"


def ctx(*lvs: LV) -> rs.Ctx:
    facts = demo_facts(Wanted(net=True, files=(f"/root/kvm/{SCRATCH}.xml",)))
    return rs.Ctx(replace(facts, lvm=replace(facts.lvm, lvs=(*facts.lvm.lvs, *lvs))), PLACE_FACTS)


def test_the_newest_backup_boots_as_an_isolated_scratch_guest_then_everything_goes() -> None:
    backup = rs.choose(CHECKED, "influx")
    assert vf.scratch_name("influx") == SCRATCH
    staged = vf.procedure(ctx(), backup)
    titles = [s.title for s in staged.stages]
    assert titles == ["the LVs to restore into", "restore disk vda", "define the guest",
                      "start it and verify that it boots", "force the scratch guest off",
                      "undefine the scratch guest", "remove the scratch LVs"]
    assert [s.always for s in staged.stages] == [False] * 4 + [True] * 3
    define = staged.preview[2]
    xml = next(s.cmd.stdin for s in define.steps if s.cmd is not None and s.cmd.stdin) or ""
    assert read_domain(xml).bridges == () and "<interface" not in xml
    start = staged.preview[3]
    assert commands(start)[0] == f"virsh start {SCRATCH}" and any(isinstance(s.effect, Wait) for s in start.steps)
    off, undefine, lvs = staged.preview[4:]
    assert [s.target for s in off.steps] == [SCRATCH] and commands(off) == [f"virsh destroy {SCRATCH}"]
    assert commands(undefine)[0] == f"virsh undefine {SCRATCH}"
    assert commands(lvs) == ["lvremove rl_build/vminflux-verify <<< 'y\\n'"] and [s.target for s in lvs.steps] == [None]
    host, at = connect(DEMO), place_host(PLACE, DEMO, apply=False)
    try:
        c = ctx()
        ran = run_on({rs.TARGET: host, rs.PLACE: at}, staged, lambda _ex: c, places={rs.PLACE: PLACE.directory})
    finally:
        host.close()
        at.close()
    assert any("remove rl_build/vminflux-verify" in line for line in ran.lines), ran.lines


def test_a_taken_scratch_name_is_refused_before_anything() -> None:
    backup = rs.choose(CHECKED, "influx")
    with pytest.raises(PreconditionFailed, match="scratch LV"):
        vf.procedure(ctx(LV("vminflux-verify", "rl_build", "-wi-a-----", 20 * G, "", None, None)), backup)
    with pytest.raises(PreconditionFailed, match="a guest test1 exists"):
        vf.check(ctx(), backup, "test1")


def test_cleanup_removes_only_what_the_restore_made() -> None:
    backup = rs.choose(CHECKED, "influx")
    assert backup.manifest is not None
    lvs = vf._lv_names(ctx(), backup, SCRATCH)
    assert lvs == (("vminflux-verify", rs.of_tag(backup.manifest, "vminflux")),)
    other = LV("vminflux-verify", "rl_build", "-wi-a-----", 20 * G, "", None, None)  # not restored by this backup
    assert vf._remove_lvs(ctx(other), SCRATCH, lvs).empty
    ours = LV("vminflux-verify", "rl_build", "-wi-a-----", 20 * G, "", None, None, tags=(lvs[0][1], rs.RESTORED))
    assert commands(vf._remove_lvs(ctx(ours), SCRATCH, lvs)) == ["lvremove rl_build/vminflux-verify <<< 'y\\n'"]
    assert vf._off(ctx(), SCRATCH).empty and vf._undefine(ctx(), SCRATCH).empty


def test_the_gate_refuses_removing_a_scratch_lv_this_run_did_not_make() -> None:
    """A later run (not the one that restored it) must name the LV: the removal is refused."""
    backup = rs.choose(CHECKED, "influx")
    lvs = vf._lv_names(ctx(), backup, SCRATCH)
    ours = LV("vminflux-verify", "rl_build", "-wi-a-----", 20 * G, "", None, None, tags=(lvs[0][1], rs.RESTORED))
    c = ctx(ours)
    host = connect(DEMO)
    try:
        with pytest.raises(Refused, match="names None as its target"):
            Executor(host, lambda _l: None).execute(vf._remove_lvs(c, SCRATCH, lvs), facts=c.target)
    finally:
        host.close()


def _backed_up(bed: Bed) -> tuple[Executor, Backup]:  # noqa: F811 (named as the fixture it takes)
    """Real borg: one signed backup of influx in the bed's repository, and an executor for it."""
    after = be._after(engine_ctx(bed), "influx", WHEN)
    sealed = be.seal_backup(lambda cmd: bed.host.runner.run(cmd).stdout, after, "influx", STAMP, WHEN,
                            {"vda": str(bed.disk)})
    ex = Executor(bed.host, lambda _l: None, places={"demo": bed.repo.url}, place=True)
    ex.execute(en.backup_plan(bed.repo, "influx", STAMP, WHEN, [str(bed.disk)], sealed.sealed))
    (b,) = read_repo(bed.repo, bed.host, "influx").of("influx")
    return ex, b


def test_the_verdict_is_kept_beside_the_backup_as_an_archive(bed: Bed) -> None:  # noqa: F811 (the fixture)
    """Real borg: a backup archive, then its verification's verdict as one more archive."""
    ex, b = _backed_up(bed)
    checked = datetime(2026, 12, 2, 3, 15, tzinfo=UTC)
    verdict = Verdict.of([(False, "no login prompt on the console of influx-verify within 300 s")])
    ex.execute(vf.record_plan(bed.repo, b, "demo", verdict, checked))
    name = f"influx-{STAMP}.verified-20261202T031500Z"
    listed = json.loads(subprocess.run(en.list_archives(bed.repo).argv, env=dict(en.env(bed.repo)),
                                       capture_output=True, check=True).stdout)
    assert sorted(a["name"] for a in listed["archives"]) == [f"influx-{STAMP}", name]
    kept = json.loads(subprocess.run(en.extract(bed.repo, name, en.VERDICT_ITEM).argv, env=dict(en.env(bed.repo)),
                                     capture_output=True, check=True).stdout)
    assert (kept["ok"], kept["archive"], kept["host"]) == (False, f"influx-{STAMP}", "demo")
    assert "no login prompt" in kept["lines"][0]
    assert [a.name for a in en.backups_of(en.parse_list(json.dumps(listed), "t"), "influx")] == [f"influx-{STAMP}"]


def test_the_guests_with_backups_are_read_from_the_repository(bed: Bed) -> None:  # noqa: F811 (the fixture)
    """Real borg: a guest with a backup (and its verdict) is listed once; an absent repository holds none."""
    ex, b = _backed_up(bed)
    ex.execute(vf.record_plan(bed.repo, b, "demo", Verdict.of([(True, "booted")]), datetime(2026, 12, 2, tzinfo=UTC)))
    assert guests_in_repo(bed.repo, bed.host) == ("influx",)
    absent = replace(bed.repo, url=str(bed.tmp / "no-repo"))
    assert guests_in_repo(absent, bed.host) == ()


def test_backup_verify_refuses_clearly_without_a_repository() -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["backup", "verify", "--site", "demo"])
    assert code == 2 and "names no backup repository" in err.getvalue()
