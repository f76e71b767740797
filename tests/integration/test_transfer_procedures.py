"""The stages of guest-move, lv-backup and lv-backup-restore run for real over SSH on loopback:
the target's LVM is a scratch VG behind its own sshd (``SetEnv LVM_SYSTEM_DIR``: LV tags
written and read back through ``lvs``), the place a directory behind another sshd, the data
loop devices at the LV paths udev would make (``/dev/<vg>/<lv>``; no device-mapper here, so no
LV holds data and no snapshot can be taken: the source's snapshot is a loop device named like
one, its facts given). Faults are injected into the transfers through the executor; a re-run
converges: no second LV, the source untouched."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kvmops.errors import ConfirmationRequired, SafetyError
from kvmops.executor import StepFailed
from kvmops.facts.lvm import read_state
from kvmops.facts.place import read_place, verify_backups
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.names import snapshot_name
from kvmops.net.facts import NetFacts
from kvmops.procedures import guest_move as gm
from kvmops.procedures import lv_backup as bk
from kvmops.procedures import lv_backup_restore as rs
from kvmops.procedures.stages import Staged, executors, run_staged
from kvmops.runners import SSHRunner, faults
from kvmops.site import Site, load_site
from kvmops.transfer.place import Place, PlaceFacts, to_prune
from tests.conftest import need_tools
from tests.support.facts import domain, host_facts
from tests.support.loop import loop_device, lvm_conf, sh
from tests.support.secrets import register_key
from tests.support.sshd import private_sshd
from tests.support.transfer import dev_links, random_data, sha256_of, ssh_runner

pytestmark = pytest.mark.integration
M = 1 << 20
WHEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SIZE = 16 * M


@dataclass
class Lab:
    """Two hosts: ``kvm1`` (source of the move; host of the backups) and ``kvm2`` (target of the
    move: a scratch VG; also the backup place), and the loop devices holding the data."""

    src: Site
    dst: Site
    src_runner: SSHRunner
    dst_runner: SSHRunner
    snap: str  # the source snapshot's stand-in (a loop device)
    data: str  # the source data's sha256
    env: dict[str, str]  # the target VG's LVM environment (for the test's own checks)
    folder: Path


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    need_tools("ssh", "/usr/sbin/sshd", "lvm", "losetup", "zstd")
    tag = f"{os.getpid()}x{len(str(tmp_path)) % 97}"
    svg, dvg = f"kvmopss{tag}", f"kvmopsd{tag}"
    for d in ("pv", "s1", "s2"):
        (tmp_path / d).mkdir()
    with loop_device(tmp_path / "pv" / "pv.img", "128M") as pv, \
            loop_device(tmp_path / "snap.img", "16M") as snap, loop_device(tmp_path / "lv.img", "16M") as lv, \
            loop_device(tmp_path / "copy.img", "16M") as copy:
        env = lvm_conf(tmp_path / "pv", pv)
        sh("pvcreate", "-q", pv, env=env)
        sh("vgcreate", "-q", dvg, pv, env=env)
        links = {"vmg1": lv, "vmg1-copy": copy}
        try:
            with dev_links(dvg, links), dev_links(svg, {snapshot_name("vmg1", WHEN): snap}), \
                    private_sshd(tmp_path / "s1") as s1, \
                    private_sshd(tmp_path / "s2", f"SetEnv LVM_SYSTEM_DIR={tmp_path / 'pv'}\n") as s2:
                data = random_data(Path(snap), SIZE)
                a, b = ssh_runner(s1), ssh_runner(s2)
                base = load_site()
                key, allowed = signing_key(tmp_path, "kvm1")
                try:
                    yield Lab(replace(base, name="kvm1", vg=svg, signing_key=str(key)),
                              replace(base, name="kvm2", vg=dvg, allowed_signers=str(allowed)), a, b, snap,
                              data, env, tmp_path)
                finally:
                    a.close()
                    b.close()
        finally:
            sh("vgremove", "-q", "-ff", dvg, check=False, env=env)
            sh("pvremove", "-q", "-ff", pv, check=False, env=env)


def signing_key(folder: Path, host: str) -> tuple[Path, Path]:
    """The source host's signing key (its host key's stand-in) and allowed signers naming it."""
    key = folder / "signing" / host
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host, "-f", str(key)], check=True)
    register_key(key.read_text())
    allowed = folder / "signing" / "allowed_signers"
    allowed.write_text(f"{host} {' '.join(key.with_suffix('.pub').read_text().split()[:2])}\n")
    return key, allowed


@pytest.fixture
def fault(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    faults.reset()
    yield monkeypatch
    faults.reset()


def source_facts(lab: Lab) -> HostFacts:
    """The source as facts: guest g1 (shut off) on LV vmg1, its move's snapshot (tagged)."""
    lvs = (LV("vmg1", lab.src.vg, "owi-a-----", SIZE, "", None, WHEN),
           LV(snapshot_name("vmg1", WHEN), lab.src.vg, "swi-a-s---", 8 * M, "vmg1", 0.0, WHEN,
              tags=(gm.SNAPSHOT_TAG, bk.SNAPSHOT_TAG)))
    lvm = LvmState(VG(lab.src.vg, 1 << 30, 512 * M, 4 * M, 2), lvs)
    return host_facts(lvm, site=lab.src, domains=[domain("g1", f"/dev/{lab.src.vg}/vmg1")],
                      paths={"/root/kvm/g1.xml": False, "/root/kvm/g1.xml.undefined": False})


def target_facts(lab: Lab) -> HostFacts:
    """The target's real LVM report (with tags) read over SSH; no guests; no bridges needed."""
    files: dict[str, str | None] = {"/root/kvm/g1.xml": None, "/root/kvm/g1-copy.xml": None}
    return host_facts(read_state(lab.dst_runner, lab.dst.vg), site=lab.dst, net=NetFacts(), files=files)


def lvs_now(lab: Lab) -> dict[str, set[str]]:
    return {lv.name: set(lv.tags) for lv in read_state(lab.dst_runner, lab.dst.vg).lvs}


def hosts(lab: Lab) -> dict[str, Host]:
    return {"source": Host(lab.src, lab.src_runner, "test:///default"),
            "target": Host(lab.dst, lab.dst_runner, "test:///default"),
            "place": Host(lab.dst, lab.dst_runner, "test:///default")}


def only(staged: Staged, *titles: str) -> Staged:  # type: ignore[type-arg]
    """The named stages of a procedure (the ones this machine can run), in order."""
    picked = [(s, p) for s, p in zip(staged.stages, staged.preview, strict=True) if s.title in titles]
    assert [s.title for s, _ in picked] == list(titles)
    return Staged(staged.title, [s for s, _ in picked], [p for _, p in picked])


# -- guest-move --------------------------------------------------------------------------------


def test_move_copy_resumes_after_a_fault_and_never_makes_a_second_copy(lab: Lab, fault: pytest.MonkeyPatch) -> None:
    fresh = lambda: gm.Both(source_facts(lab), target_facts(lab))  # noqa: E731
    staged = gm.procedure(fresh(), "g1", WHEN)
    copy = only(staged, "copy disk vda")
    ex = executors({k: v for k, v in hosts(lab).items() if k != "place"}, print)
    free0 = read_state(lab.dst_runner, lab.dst.vg).vg.free

    fault.setenv(faults.FAULT_MATCH_ENV, r"^kvm1\$ dd if=")  # the stream fails before it ran
    fault.setenv(faults.FAULT_AT_ENV, "1")
    with pytest.raises(StepFailed, match="injected fault"):
        run_staged(copy, ex, fresh, frozenset())
    assert lvs_now(lab) == {"vmg1": {gm.from_tag(source_facts(lab), "vmg1"), gm.COPYING}}  # one, tagged incomplete
    free1 = read_state(lab.dst_runner, lab.dst.vg).vg.free
    assert free1 == free0 - SIZE

    fault.delenv(faults.FAULT_AT_ENV)
    plan = copy.stages[0].plan(fresh())  # planned again: the incomplete copy is resumed, not made again
    assert plan.steps[0].transfer is not None and [s.cmd.argv[0] for s in plan.steps if s.cmd] == ["lvchange"]
    run_staged(copy, ex, fresh, frozenset())
    assert lvs_now(lab) == {"vmg1": {gm.from_tag(source_facts(lab), "vmg1"), gm.COPIED}}
    assert sha256_of(f"/dev/{lab.dst.vg}/vmg1") == lab.data == sha256_of(lab.snap)  # both ends; source intact
    assert read_state(lab.dst_runner, lab.dst.vg).vg.free == free1  # no second LV

    fault.setenv(faults.FAULT_AT_ENV, "1")  # a complete copy checked again; then a fault after it ran
    fault.setenv(faults.FAULT_WHEN_ENV, "after")
    with pytest.raises(StepFailed, match="injected fault"):
        run_staged(copy, ex, fresh, frozenset())
    fault.delenv(faults.FAULT_AT_ENV)
    run_staged(copy, ex, fresh, frozenset())
    assert ex["target"].transferred[-1].skipped  # the same data on both ends: nothing streamed

    lab.data = random_data(Path(lab.snap), SIZE, seed=9)  # the source changed since (it ran again)
    run_staged(copy, ex, fresh, frozenset())
    assert not ex["target"].transferred[-1].skipped and sha256_of(f"/dev/{lab.dst.vg}/vmg1") == lab.data
    assert list(lvs_now(lab)) == ["vmg1"]


def test_an_lv_of_that_name_without_the_tags_is_a_clash(lab: Lab) -> None:
    sh("lvcreate", "-q", "--name", "vmg1", "--size", "16m", "--yes", lab.dst.vg, env=lab.env)
    with pytest.raises(SafetyError, match="name clash"):
        gm.disks(gm.Both(source_facts(lab), target_facts(lab)), "g1")


# -- lv-backup and lv-backup-restore -----------------------------------------------------------


def place_of(lab: Lab) -> Place:
    return Place("kvm2", str(lab.folder / "backups"))


def backup_ctx(lab: Lab, ex: dict | None = None) -> bk.Ctx:  # type: ignore[type-arg]
    done = {t.key: t for t in ex["place"].transferred} if ex else {}
    pf = read_place(place_of(lab), hosts(lab)["place"])
    return bk.Ctx(replace(source_facts(lab), paths={"/usr/bin/zstd": True, lab.src.signing_key: True}), pf, done)


def back_up(lab: Lab, when: datetime, keep: int, confirm: frozenset[str] = frozenset()) -> PlaceFacts:
    ex = executors({"source": hosts(lab)["source"], "place": hosts(lab)["place"]}, print,
                   places={"place": place_of(lab).directory})
    staged = bk.procedure(backup_ctx(lab), "g1", when, keep=keep)
    part = only(staged, "make the backup's folder", "back up disk vda", "write the manifest", "retention")
    run_staged(part, ex, lambda: backup_ctx(lab, ex), confirm)
    return read_place(place_of(lab), hosts(lab)["place"])


def test_backups_with_manifests_retention_and_a_restore_checked_against_the_manifest(
        lab: Lab, fault: pytest.MonkeyPatch) -> None:
    first = back_up(lab, datetime(2026, 12, 1, 2, 0, tzinfo=UTC), keep=0)
    (b1,) = first.complete("g1")
    m = b1.manifest
    assert m is not None and m.compression == "zstd" and m.disks[0].sha256 == lab.data
    assert sha256_of(f"{b1.folder}/vmg1.raw.zst") == m.disks[0].compressed_sha256
    incomplete = Path(place_of(lab).folder("g1", "20261201T030000Z"))
    incomplete.mkdir(parents=True)
    (incomplete / "vmg1.raw.zst").write_bytes(b"partial")
    with pytest.raises(ConfirmationRequired):  # retention removes b1: it needs confirm=g1
        back_up(lab, datetime(2026, 12, 1, 4, 0, tzinfo=UTC), keep=1)
    after = back_up(lab, datetime(2026, 12, 1, 4, 0, tzinfo=UTC), keep=1, confirm=frozenset({"g1"}))
    assert [b.stamp for b in after.of("g1")] == ["20261201T040000Z", "20261201T030000Z"]
    assert [b.complete for b in after.of("g1")] == [True, False] and not Path(b1.folder).exists()
    assert to_prune(after, "g1", 1) == ()  # the only complete one stays

    checked = verify_backups(after, lab.dst, "g1")  # the manifest signed on kvm1, checked for kvm2
    newest = rs.choose(checked, "g1")
    assert newest.trust is not None and newest.trust.good and newest.trust.signer == "kvm1"
    assert Path(f"{newest.folder}/manifest.json.sig").read_text().startswith("-----BEGIN SSH SIGNATURE-----")
    with pytest.raises(Exception, match="INCOMPLETE"):
        rs.choose(checked, "g1", "20261201T030000Z")
    fresh = lambda: rs.Ctx(target_facts(lab), read_place(place_of(lab), hosts(lab)["place"]))  # noqa: E731
    restore = rs.procedure(fresh(), newest, new_name="g1-copy")
    ex = executors({"target": hosts(lab)["target"], "place": hosts(lab)["place"]}, print,
                   places={"place": place_of(lab).directory})
    fault.setenv(faults.FAULT_MATCH_ENV, r"^kvm2\$ zstd --decompress")
    fault.setenv(faults.FAULT_AT_ENV, "1")
    fault.setenv(faults.FAULT_WHEN_ENV, "after")
    with pytest.raises(StepFailed, match="injected fault"):
        run_staged(restore, ex, fresh, frozenset())
    assert lvs_now(lab)["vmg1-copy"] == {rs.of_tag(newest.manifest, "vmg1"), rs.RESTORING}  # type: ignore[arg-type]
    fault.delenv(faults.FAULT_AT_ENV)
    run_staged(rs.procedure(fresh(), newest, new_name="g1-copy"), ex, fresh, frozenset())
    assert list(lvs_now(lab)) == ["vmg1-copy"]  # streamed again into the same LV
    assert rs.RESTORED in lvs_now(lab)["vmg1-copy"]
    assert sha256_of(f"/dev/{lab.dst.vg}/vmg1-copy") == lab.data == sha256_of(lab.snap)
    assert rs.verify(fresh(), newest, "g1-copy", define=False, start=False).ok
