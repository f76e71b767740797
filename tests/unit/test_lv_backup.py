"""lv-backup and lv-backup-restore as functions over facts: the place (parsed, and read from the
demo's recorded peer), manifests, retention, the backup's stages, the restore's choice of a
backup, its LV names and states, and the definition it makes."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kvmops.errors import ConfigError, InvalidInput, KvmopsError, NotFound, SafetyError
from kvmops.facts import read_facts
from kvmops.facts.place import place_host, read_place, verify_backups
from kvmops.guests import macs
from kvmops.guests.xml import read_domain
from kvmops.host import connect
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.lvm.facts import LV
from kvmops.plan import Plan
from kvmops.procedures import lv_backup as bk
from kvmops.procedures import lv_backup_restore as rs
from kvmops.procedures.base import PreconditionFailed
from kvmops.safety.effects import Where, effects
from kvmops.safety.rules import Context, RunState, judge
from kvmops.site import load_site, resolve_site
from kvmops.transfer.manifest import DiskBackup, Manifest, ManifestError, parse_manifest
from kvmops.transfer.place import PlaceFacts, _backups, parse_place, to_prune
from kvmops.transfer.result import Transferred
from kvmops.transfer.xmlmap import map_xml

DEMO, DEMO2 = load_site(resolve_site("demo")), load_site(resolve_site("demo2"))
WHEN = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
G = 1 << 30


def demo_facts(wanted: Wanted) -> HostFacts:
    host = connect(DEMO)
    try:
        return read_facts(host, wanted)
    finally:
        host.close()


PLACE = parse_place("demo2:/srv/kvmops-backups")
PLACE_FACTS = read_place(PLACE, place_host(PLACE, DEMO, apply=False))
# the restore's view: each complete backup's signature checked against the demo's allowed signers
CHECKED = verify_backups(verify_backups(PLACE_FACTS, DEMO, "influx"), DEMO, "web1")
KEY = DEMO.signing_key
SOURCE = demo_facts(Wanted(paths=("/usr/bin/zstd", "/root/kvm/influx.xml", KEY)))


def commands(plan: Plan) -> list[str]:
    return [s.text().splitlines()[-1] if s.transfer is None else s.transfer.display for s in plan.steps if s.effect]


# -- the place --------------------------------------------------------------------------------


def test_places_are_parsed_with_their_host() -> None:
    local = parse_place("/srv/backups/")
    assert (local.label, local.directory, local.ssh, local.site) == ("local", "/srv/backups", None, None)
    ssh = parse_place("root@nas.example:/srv/backups")
    assert ssh.label == "root@nas.example" and ssh.ssh is not None and ssh.ssh.port is None
    url = parse_place("ssh://backup@nas.example:2222/data/kvm")
    assert url.ssh is not None and (url.ssh.destination, url.ssh.port, url.directory) == ("backup@nas.example", 2222,
                                                                                        "/data/kvm")
    site = parse_place("demo2:/srv/kvmops-backups")
    assert site.site is not None and site.label == "demo2" and site.recorded


def test_a_place_named_by_a_site_files_absolute_path_is_that_host(tmp_path: Path) -> None:
    """``/path/nas.toml:/srv/backups`` is the host of that site file (found on real hosts: it was
    taken for a local folder called ``/path/nas.toml:/srv/backups``)."""
    site_file = tmp_path / "nas.toml"
    site_file.write_text(re.sub(r'(?m)^name = ".*"$', 'name = "nas"', resolve_site("guide").read_text(), count=1))
    place = parse_place(f"{site_file}:/srv/kvmops-backups")
    assert place.site is not None and place.label == "nas" and place.directory == "/srv/kvmops-backups"
    assert place.ssh is None and place.label != "local"
    with pytest.raises(ConfigError, match="does not exist"):
        parse_place(f"{tmp_path}/missing.toml:/srv/b")
    assert parse_place("/srv/backups.toml").label == "local"  # no ":/dir": a folder


@pytest.mark.parametrize(("text", "error", "message"), [
    ("", InvalidInput, "no backup place"),
    ("nas", InvalidInput, "give /dir"),
    ("/", InvalidInput, "plain absolute path"),
    ("/srv/../etc", InvalidInput, "plain absolute path"),
    ("/srv/back ups", InvalidInput, "plain absolute path"),
    ("-oProxyCommand=x@h:/d", InvalidInput, "bad SSH destination"),
    ("ssh://h:port/d", InvalidInput, "ssh://user@host"),
    ("nosuchsite:/srv", ConfigError, "no shipped site called 'nosuchsite'"),
])
def test_a_bad_place_is_a_clear_error(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_place(text)


def test_the_recorded_place_lists_complete_and_incomplete_backups() -> None:
    assert PLACE_FACTS.exists and PLACE_FACTS.tools == {"zstd", "gzip"}
    influx = PLACE_FACTS.of("influx")
    assert [(b.stamp, b.complete) for b in influx] == [("20261129T020000Z", False), ("20261128T020000Z", True),
                                                       ("20261126T020000Z", True)]
    assert "no manifest" in influx[0].problem
    (web1,) = PLACE_FACTS.complete("web1")
    assert web1.manifest is not None and web1.manifest.compression == "zstd" and web1.manifest.source_site == "demo2"


def test_retention_keeps_the_newest_complete_and_never_an_incomplete_one() -> None:
    assert [b.stamp for b in to_prune(PLACE_FACTS, "influx", 1)] == ["20261126T020000Z"]
    assert to_prune(PLACE_FACTS, "influx", 2) == () and to_prune(PLACE_FACTS, "influx", 0) == ()
    assert to_prune(PLACE_FACTS, "web1", 1) == ()  # the only complete one
    with pytest.raises(InvalidInput):
        to_prune(PLACE_FACTS, "influx", -1)


def manifest(**over: object) -> Manifest:
    disk = DiskBackup("vda", "vmweb1", 12 * G, "vmweb1.raw.zst", "a" * 64, "b" * 64, 123)
    m = Manifest("web1", "20261201T020000Z", "demo2", "vg_guests", "vm", "<domain/>", {"br2368": 2368}, "zstd",
                 (disk,), "2026-12-01T02:00:00+00:00", "2026-12-01T02:03:00+00:00")
    return replace(m, **over)  # type: ignore[arg-type]


def test_a_manifest_reads_back_and_a_damaged_one_is_refused() -> None:
    m = manifest()
    assert parse_manifest(m.to_json(), "m") == m
    for bad in (m.to_json().replace('"format": 1', '"format": 2'), m.to_json()[:-10], "[]",
                manifest(compression="xz").to_json(), manifest(disks=()).to_json(),
                manifest(disks=(replace(m.disks[0], sha256="nope"),)).to_json(),
                manifest(disks=(replace(m.disks[0], file="../x"),)).to_json(),
                manifest(guest="we b1").to_json(), m.to_json().replace('"guest"', '"guest_name"')):
        with pytest.raises(ManifestError):
            parse_manifest(bad, "m")


def test_a_backup_whose_manifest_does_not_match_its_folder_is_incomplete() -> None:
    place = parse_place("/b")
    text = manifest().to_json()
    entries = [("d", 0, "web1"), ("d", 0, "web1/20261201T020000Z"), ("f", 5, "web1/20261201T020000Z/manifest.json"),
               ("d", 0, "web1/20261202T020000Z"), ("f", 9, "web1/20261202T020000Z/manifest.json"),
               ("f", 123, "web1/20261202T020000Z/vmweb1.raw.zst"), ("d", 0, "web1/notastamp")]
    found = _backups(place, entries, {"web1/20261201T020000Z/manifest.json": text,
                                      "web1/20261202T020000Z/manifest.json": text})
    assert [(b.stamp, b.complete) for b in found] == [("20261201T020000Z", False), ("20261202T020000Z", False)]
    assert "missing" in found[0].problem and "another backup" in found[1].problem


# -- lv-backup --------------------------------------------------------------------------------


def ctx(source: HostFacts = SOURCE, place: PlaceFacts = PLACE_FACTS) -> bk.Ctx:
    return bk.Ctx(source, place)


def test_a_backup_of_a_shut_off_guest_plans_every_stage() -> None:
    staged = bk.procedure(ctx(), "influx", WHEN, keep=2)
    plans = {s.title: p for s, p in zip(staged.stages, staged.preview, strict=True)}
    assert plans["shut the guest down for the snapshot"].empty and plans["start the guest again"].empty
    assert commands(plans["snapshot its disks"]) == [
        "lvcreate --snapshot --name vminflux-20261201T0200Z --size 5g --addtag kvmops-backup-snapshot "
        "rl_build/vminflux"]
    copy = plans["back up disk vda"]
    t = copy.steps[0].transfer
    assert t is not None and t.display == (
        "demo$ gzip --fast --stdout -- /dev/rl_build/vminflux-20261201T0200Z | demo2$ dd of=/srv/kvmops-backups/"
        "influx/20261201T020000Z/vminflux.raw.gz bs=4M conv=fsync status=none")
    assert [e.display() for e in t.verify] == ["demo2$ openssl dgst -sha256 -r -- "
                                               "/srv/kvmops-backups/influx/20261201T020000Z/"
                                              "vminflux.raw.gz"]
    assert [e.display() for e in t.measure] == [
        "demo$ openssl dgst -sha256 -r -- /dev/rl_build/vminflux-20261201T0200Z"]
    assert commands(copy)[1] == "gzip --test --quiet -- /srv/kvmops-backups/influx/20261201T020000Z/vminflux.raw.gz"
    retention = plans["retention"]
    assert [(s.text(), s.target) for s in retention.steps] == [
        ("rm -r --one-file-system -- /srv/kvmops-backups/influx/20261126T020000Z", "influx")]
    assert any("INCOMPLETE" in n for n in retention.notes)


def test_zstd_when_both_ends_have_it_else_gzip() -> None:
    assert bk.codec_of(ctx()).name == "gzip"  # the demo has no zstd
    with_zstd = replace(SOURCE, paths={**SOURCE.paths, "/usr/bin/zstd": True})
    assert bk.codec_of(ctx(with_zstd)).name == "zstd"
    assert bk.codec_of(ctx(with_zstd, replace(PLACE_FACTS, tools=frozenset({"gzip"})))).name == "gzip"


def test_a_running_guest_needs_restart_and_is_started_again_after_the_snapshot() -> None:
    facts = demo_facts(Wanted(paths=("/usr/bin/zstd", "/root/kvm/test1.xml", KEY)))
    with pytest.raises(PreconditionFailed, match="set restart=True"):
        bk.check(ctx(facts), "test1", restart=False)
    staged = bk.procedure(ctx(facts), "test1", WHEN, restart=True)
    titles = [s.title for s in staged.stages]
    assert titles[:3] == ["shut the guest down for the snapshot", "snapshot its disks", "start the guest again"]
    assert commands(staged.preview[0])[0] == "virsh shutdown test1"
    assert commands(staged.preview[2]) == ["virsh start test1"] == commands(staged.preview[-1])
    assert staged.stages[-1].on_failure


def test_the_manifest_holds_the_checked_sums_and_is_refused_without_them() -> None:
    stamp = bk.stamp_of(WHEN)
    with pytest.raises(KvmopsError, match="no checked copy of disk"):
        bk._manifest(ctx(), "influx", stamp, bk.codec_of(ctx()), WHEN)
    done = Transferred("vda", 5 * G, "c" * 64, 9.0, {"x": "c" * 64}, {"demo$ sha256sum": "d" * 64})
    plan = bk._manifest(replace(ctx(), done={"vda": done}), "influx", stamp, bk.codec_of(ctx()), WHEN)
    sign, cmd = plan.steps[0].transfer, plan.steps[1].cmd
    assert cmd is not None and cmd.argv[-1].endswith("/influx/20261201T020000Z/manifest.json") and cmd.stdin
    assert sign is not None and sign.display == (
        f"demo$ ssh-keygen -q -Y sign -n kvmops-backup -f {KEY} <<< " + sign.source.cmd.display().split("<<< ")[1]
        + " | demo2$ dd of=/srv/kvmops-backups/influx/20261201T020000Z/manifest.json.sig bs=4M conv=fsync status=none")
    assert sign.source.cmd.stdin == cmd.stdin and not sign.source.cmd.mutates  # the signer reads: its key stays
    m = parse_manifest(cmd.stdin, "m")
    # the place's executor judges it: the signature and the manifest are files in the place's folder
    where = Where("demo2", "", lambda _p: None, {})
    ctx_ = Context(facts={}, places={"demo2": "/srv/kvmops-backups"})
    assert judge(effects(plan.steps, where), ctx_, RunState()) == []
    assert (m.disks[0].sha256, m.disks[0].compressed_sha256, m.disks[0].compressed_size) == ("d" * 64, "c" * 64, 5 * G)
    assert m.networks == {"virbr1.2367": 2367} and read_domain(m.xml).name == "influx" and m.compression == "gzip"


# -- lv-backup-restore ------------------------------------------------------------------------


def target(*lvs: LV) -> HostFacts:
    facts = demo_facts(Wanted(net=True, files=("/root/kvm/web1.xml", "/root/kvm/web1-copy.xml")))
    return replace(facts, lvm=replace(facts.lvm, lvs=(*facts.lvm.lvs, *lvs)))


def test_the_newest_complete_backup_is_chosen_never_an_incomplete_one() -> None:
    assert rs.choose(CHECKED, "influx").stamp == "20261128T020000Z"
    with pytest.raises(PreconditionFailed, match="INCOMPLETE"):
        rs.choose(CHECKED, "influx", "20261129T020000Z")
    with pytest.raises(NotFound, match="no complete backup of mail"):
        rs.choose(CHECKED, "mail")


def test_only_a_manifest_signed_by_an_allowed_signer_is_restored_unless_the_operator_says_so() -> None:
    """influx's backup of 20261126 is unsigned (an old backup of today's format): refused, naming
    the signed one; restorable only with allow_unsigned. A backup whose signature was never
    checked is refused the same way."""
    with pytest.raises(SafetyError, match=r"20261126T020000Z of influx is not trusted: it is not signed .*"
                                          r"allow_unsigned=True.*signed by an allowed signer: 20261128T020000Z"):
        rs.choose(CHECKED, "influx", "20261126T020000Z")
    assert rs.choose(CHECKED, "influx", "20261126T020000Z", allow_unsigned=True).stamp == "20261126T020000Z"
    with pytest.raises(SafetyError, match="its signature was not checked"):
        rs.choose(PLACE_FACTS, "influx")
    good = rs.choose(CHECKED, "web1")
    assert good.trust is not None and good.trust.good and good.trust.signer == "demo2"


def test_lv_names_for_a_new_guest() -> None:
    m = manifest(guest="influx", disks=(replace(manifest().disks[0], lv="vminflux"),))
    assert rs.new_lv_name(m, DEMO, "", "vminflux") == "vminflux"
    assert rs.new_lv_name(m, DEMO, "influx2", "vminflux") == "vminflux2"
    assert rs.new_lv_name(m, DEMO, "influx2", "vminflux-data") == "vminflux2-data"
    assert rs.new_lv_name(m, DEMO, "influx2", "vmlogs") == "vminflux2-vmlogs"


def test_a_restore_into_new_lvs_defined_under_a_new_name() -> None:
    backup = rs.choose(CHECKED, "web1")
    c = rs.Ctx(target(), PLACE_FACTS)
    staged = rs.procedure(c, backup, new_name="web1-copy", define=True, start=True)
    lvs, disk, define, start = staged.preview
    assert commands(lvs)[0].startswith("lvcreate --name vmweb1-copy --size 12g --addtag kvmops-restore-of:web1/")
    t = disk.steps[0].transfer
    assert t is not None and backup.manifest is not None and t.expect == backup.manifest.disks[0].sha256
    assert [e.display() for e in t.verify] == ["demo$ openssl dgst -sha256 -r -- /dev/rl_build/vmweb1-copy"]
    xml = define.steps[0].cmd.stdin if define.steps[0].cmd else ""
    d = read_domain(xml or "")
    assert (d.name, d.disk_sources, d.bridges, d.uuid) == ("web1-copy", ("/dev/rl_build/vmweb1-copy",),
                                                          ("virbr1.2368",), None)
    # a copy that may run beside the original: new MACs, chosen for the new name as for a new guest
    facts = target()
    assert d.macs == macs.choose(DEMO.name, "web1-copy", 1, facts.macs_taken()) != ("52:54:00:a2:0b:01",)
    assert commands(start)[0] == "virsh start web1-copy"


def test_a_restore_under_its_own_name_keeps_its_macs() -> None:
    """Restored with define under its own name, a guest keeps its MACs (and its DHCP reservations)."""
    backup = rs.choose(CHECKED, "web1")
    c = rs.Ctx(target(), CHECKED)
    xm = rs.mapping(c, backup, "")
    assert not xm.new_identity and xm.macs == ()
    xml = map_xml(rs.manifest(backup).xml, xm)
    assert read_domain(xml).macs == read_domain(rs.manifest(backup).xml).macs == ("52:54:00:a2:0b:01",)
    assert "with its own UUID and MAC addresses 52:54:00:a2:0b:01" in rs.check(c, backup, "", True)


def test_restoring_over_an_existing_lv_needs_its_confirmation() -> None:
    backup = rs.choose(CHECKED, "web1")
    c = rs.Ctx(target(LV("vmweb1", "rl_build", "-wi-a-----", 12 * G, "", None, None)), PLACE_FACTS)
    assert rs.overwrite_targets(c, backup, "") == "rl_build/vmweb1"
    assert rs.check(c, backup, "", False).endswith("to restore over the existing LVs set confirm='rl_build/vmweb1'")
    lvs = rs.procedure(c, backup).preview[0]
    assert [s.target for s in lvs.steps] == ["rl_build/vmweb1"]
    small = rs.Ctx(target(LV("vmweb1", "rl_build", "-wi-a-----", 10 * G, "", None, None)), PLACE_FACTS)
    with pytest.raises(PreconditionFailed, match="exists with 10.00 GiB"):
        rs.procedure(small, backup)
    busy = rs.Ctx(target(LV("vmweb1", "rl_build", "-wi-ao----", 12 * G, "", None, None)), PLACE_FACTS)
    with pytest.raises(SafetyError, match="in use"):
        rs.procedure(busy, backup)


def test_a_rerun_streams_again_only_into_its_unfinished_lvs() -> None:
    backup = rs.choose(CHECKED, "web1")
    assert backup.manifest is not None
    tag = rs.of_tag(backup.manifest, "vmweb1")
    for state in (rs.RESTORING, rs.RESTORED):
        c = rs.Ctx(target(LV("vmweb1", "rl_build", "-wi-a-----", 12 * G, "", None, None, tags=(tag, state))),
                   PLACE_FACTS)
        lvs, disk = rs.procedure(c, backup).preview
        assert lvs.empty and rs.overwrite_targets(c, backup, "") == ""
        streams = [s.transfer for s in disk.steps if s.transfer]
        # an incomplete restore is filled again; a finished one (a guest may run from it) never
        assert (len(streams), disk.empty) == ((1, False) if state == rs.RESTORING else (0, True))


def test_a_guest_whose_vlan_has_no_bridge_on_the_target_is_not_defined() -> None:
    backup = rs.choose(CHECKED, "influx")  # on virbr1.2367: the demo has no bridge for VLAN 2367
    with pytest.raises(PreconditionFailed, match="virbr1.2367, which does not exist there"):
        rs.procedure(rs.Ctx(target(), PLACE_FACTS), backup, new_name="influx-old", define=True)
    with pytest.raises(InvalidInput, match="needs define=True"):
        rs.procedure(rs.Ctx(target(), PLACE_FACTS), backup, new_name="influx-old", start=True)
    web1 = rs.choose(CHECKED, "web1")
    with pytest.raises(PreconditionFailed, match="a guest test1 exists on demo"):
        rs.check(rs.Ctx(target(), PLACE_FACTS), web1, "test1", define=True)


def test_a_local_place_is_read_with_a_command_per_manifest(tmp_path: Path) -> None:
    top = tmp_path / "backups"
    for stamp, with_manifest in (("20261201T020000Z", True), ("20261202T020000Z", True), ("20261203T020000Z", False)):
        folder = top / "web1" / stamp
        folder.mkdir(parents=True)
        (folder / "vmweb1.raw.zst").write_bytes(b"x" * 123)
        if with_manifest:
            (folder / "manifest.json").write_text(manifest(stamp=stamp).to_json().rstrip("\n"))
    place = parse_place(str(top))
    host = place_host(place, DEMO, apply=False)
    facts = read_place(place, host)
    assert [(b.stamp, b.complete) for b in facts.of("web1")] == [
        ("20261203T020000Z", False), ("20261202T020000Z", True), ("20261201T020000Z", True)]
    assert [r.command.split()[0] for r in host.runner.records] == ["ls", "find", "head", "head"]  # a manifest each
    empty = read_place(parse_place(str(tmp_path / "none")), host)
    assert not empty.exists and empty.backups == ()


def test_an_isolated_restore_defines_the_guest_with_no_network_and_the_gate_judges_it() -> None:
    """lv-backup-verify's scratch guest: influx's bridge has no VLAN here, yet with no network
    at all it is defined; the whole restore walks the executor in plan mode (the XML policy
    judges the definition)."""
    from kvmops.procedures.stages import run_on

    backup = rs.choose(CHECKED, "influx")
    facts = demo_facts(Wanted(net=True, files=("/root/kvm/influx-verify.xml",)))
    c = rs.Ctx(facts, PLACE_FACTS)
    assert "no network" in rs.check(c, backup, "influx-verify", define=True, isolated=True)
    staged = rs.procedure(c, backup, new_name="influx-verify", define=True, start=True, isolated=True)
    define = staged.preview[-2]
    xml = next(s.cmd.stdin for s in define.steps if s.cmd is not None and s.cmd.stdin)
    d = read_domain(xml or "")
    assert (d.name, d.bridges, d.uuid) == ("influx-verify", (), None) and "<interface" not in (xml or "")
    assert commands(staged.preview[-1])[0] == "virsh start influx-verify"
    host, at = connect(DEMO), place_host(PLACE, DEMO, apply=False)
    try:
        ran = run_on({rs.TARGET: host, rs.PLACE: at}, staged, lambda _ex: c, places={rs.PLACE: PLACE.directory})
    finally:
        host.close()
        at.close()
    assert any("define guest influx-verify" in line for line in ran.lines), ran.lines
