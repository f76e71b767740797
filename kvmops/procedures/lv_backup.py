"""lv-backup: a consistent copy of a guest's disks, compressed, at a backup place.

Consistent: the guest is shut off, or (``restart``) shut down just long enough for an LVM
snapshot of each disk and started again; the copy is read from the snapshots, which are removed
on every path out. Each disk is compressed on the source host (zstd when both the source and
the place have it, else gzip: said in the plan and the manifest), streamed through kvmops into
``<place>/<guest>/<stamp>/<lv>.raw.zst`` and checked: the sha256 of the stream equals the
file's on the place, the compressor's own test passes, and the sha256 of the raw data is taken
on the source. The manifest is written last (:mod:`kvmops.transfer.manifest`); then retention
removes the complete backups beyond the ``keep`` newest (confirm = the guest's name), never the
newest complete one, never an incomplete one (those are reported).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from kvmops import names
from kvmops.cmd import change
from kvmops.errors import InvalidInput, KvmopsError, SafetyError
from kvmops.executor import Executor
from kvmops.facts import read_facts
from kvmops.facts.place import read_place
from kvmops.guests import hostfile, lifecycle
from kvmops.guests.domain import DomainInfo
from kvmops.guests.inventory import inventory_of
from kvmops.host import Host
from kvmops.hostfacts import HostFacts, Wanted, lv_free, with_lvs
from kvmops.lvm import commands as lvc
from kvmops.lvm.facts import LV
from kvmops.plan import Call, Endpoint, Plan, Progress, Transfer
from kvmops.procedures.base import Verdict, need
from kvmops.procedures.guest_move import closed
from kvmops.procedures.stages import Ran, Stage, Staged, run_on
from kvmops.transfer import commands as tc
from kvmops.transfer import lvm as tl
from kvmops.transfer import signing
from kvmops.transfer.manifest import MANIFEST, STAMP_FORMAT, DiskBackup, Manifest
from kvmops.transfer.place import SIGNATURE, Backup, Place, PlaceFacts, to_prune
from kvmops.transfer.result import Transferred, sha256_cmd
from kvmops.transfer.xmlmap import vlans_of
from kvmops.units import human

SOURCE, PLACE = "source", "place"
SNAPSHOT_TAG = tl.BACKUP_SNAPSHOT
PENDING = "(computed during the copy)"


@dataclass(frozen=True)
class Ctx:
    """The source host and the place at one moment, and the copies made so far (by disk)."""

    source: HostFacts
    place: PlaceFacts
    done: Mapping[str, Transferred] = field(default_factory=dict)


def keep_count(keep: int | str) -> int:
    """A place's folder keeps a number of complete backups (0: all); borg's calendar retention
    (``last=3,daily=7``) needs a repository."""
    text = str(keep).strip() if not isinstance(keep, bool) else ""
    if not text.isdigit():
        raise InvalidInput(f"keep={keep!r}: a place's folder keeps a number of backups (0 = all); "
                           "calendar retention such as last=3,daily=7 needs a BorgBackup repository")
    return int(text)


def stamp_of(when: datetime) -> str:
    """A backup's folder name: ``20261130T020000Z`` (UTC)."""
    return when.astimezone(UTC).strftime(STAMP_FORMAT)


def read_ctx(source: Host, place: Place, place_host: Host, guest: str,
             done: Mapping[str, Transferred] | None = None) -> Ctx:
    """The source's facts (with its zstd and the guest's kept XML) and the place's."""
    names.guest_name(guest)
    wanted = Wanted(paths=(tc.TOOL_PATHS[tc.ZSTD], hostfile.xml_path(source.site, guest), source.site.signing_key))
    return Ctx(read_facts(source, wanted), read_place(place, place_host, guest), dict(done or {}))


def codec_of(ctx: Ctx) -> tc.Codec:
    """zstd when the source and the place both have it (it compresses there, is tested and
    decompressed here), else gzip."""
    both = ctx.source.exists(tc.TOOL_PATHS[tc.ZSTD]) and tc.ZSTD in ctx.place.tools
    return tc.codec(tc.ZSTD if both else tc.GZIP)


def disk_lvs(facts: HostFacts, guest: str) -> tuple[tuple[str, LV], ...]:
    """(target dev, LV) of each of the guest's disks; each must be an LV of the site's VG."""
    row = inventory_of(facts).guest(names.guest_name(guest))
    need(row is not None, f"guest {guest} is not defined on {facts.site.name} (see the inventory runbook)")
    assert row is not None
    out = []
    for d in row.disks:
        need(d.lv is not None, f"guest {guest}'s disk {d.target} is {d.source}, not an LV of VG {facts.site.vg}: "
             "lv-backup copies LV disks of the site's VG only" + (" (that LV is MISSING)" if d.missing else ""))
        assert d.lv is not None
        out.append((d.target, d.lv))
    need(out, f"guest {guest} has no disk to back up")
    return tuple(out)


def _snapshots_of(facts: HostFacts, lv: LV) -> tuple[LV, ...]:
    return tuple(s for s in facts.lvm.snapshots_of(lv.name) if SNAPSHOT_TAG in s.tags)


def _snap_size(facts: HostFacts, lv: LV) -> int:
    return min(facts.site.snapshot_size, lv.size)


# -- checks ----------------------------------------------------------------------------------


def source_ready(source: HostFacts, guest: str, restart: bool) -> tuple[DomainInfo, tuple[tuple[str, LV], ...]]:
    """The guest and its disk LVs when the source can make a consistent, signed backup of them
    (shut off or ``restart``, the signing key there, room for the snapshots), else a refusal."""
    info = lifecycle.need_domain(source, guest)
    need(not info.active or restart, f"guest {guest} runs: shut it down first (guest-lifecycle action=shutdown), or "
         "set restart=True: it is shut down for the snapshot and started again right after it")
    key = source.site.signing_key
    need(source.exists(key), f"the key that signs the backup's manifest, {key}, is not on {source.site.name}: "
         "name the host's SSH host key (or another key only root reads) in its site file: [backup] signing_key")
    lvs = disk_lvs(source, guest)
    snaps = sum(_snap_size(source, lv) for _, lv in lvs)
    need(snaps <= source.lvm.vg.free, f"VG {source.site.vg} has {human(source.lvm.vg.free)} free; the "
         f"snapshots need {human(snaps)}")
    return info, lvs


def check(ctx: Ctx, guest: str, restart: bool) -> str:
    """What the backup will do, or a refusal saying what to do instead."""
    info, lvs = source_ready(ctx.source, guest, restart)
    codec = codec_of(ctx)
    lines = [f"guest {guest}: {info.state}" + (" (shut down for the snapshot, started again after it)"
                                               if info.active else "")]
    lines += [f"disk {dev}: {lv.path} ({human(lv.size)})" for dev, lv in lvs]
    lines.append(f"compression: {codec.name} (" + ("zstd on both ends" if codec.name == tc.ZSTD else
                                                  "zstd is not on both the source and the place") + ")")
    lines.append(f"place: {ctx.place.place}" + ("" if ctx.place.exists else " (its folder is made)"))
    done = ctx.place.of(guest)
    lines += [f"backup {b.stamp}: " + (f"complete, {human(b.manifest.size)} of disks" if b.manifest else
                                      f"INCOMPLETE ({b.problem}): never used for a restore; remove it by hand")
              for b in done]
    return "\n".join(lines)


# -- the stages ------------------------------------------------------------------------------


def _stop(c: Ctx, guest: str, restart: bool, timeout: float) -> Plan:
    info = lifecycle.need_domain(c.source, guest)
    if info.active and not restart:
        raise SafetyError(f"guest {guest} runs: shut it down first, or set restart=True; nothing was changed")
    return lifecycle.shutdown(c.source, guest, timeout=timeout)


def _snapshots(c: Ctx, guest: str, when: datetime) -> Plan:
    site = c.source.site
    plan = Plan(f"snapshot the disks of {guest} on {site.name}")
    for _, lv in disk_lvs(c.source, guest):
        lv_free(c.source, lv, "a consistent snapshot for the backup")
        for old in _snapshots_of(c.source, lv):
            plan.add(f"remove {old.path}, left by an interrupted backup", lvc.lvremove(site.vg, old.name))
        name = names.snapshot_name(lv.name, when)
        clash = c.source.lvm.get(name)
        if clash is not None and SNAPSHOT_TAG not in clash.tags:
            raise SafetyError(f"{clash.path} exists (not this backup's): run again in a minute; nothing was changed")
        plan.add(f"snapshot {lv.path} as {name} ({human(_snap_size(c.source, lv))}): the backup reads it; removed "
                 "after the copy, on every path out",
                 tl.snapshot_tagged(site.vg, lv.name, name, _snap_size(c.source, lv), [SNAPSHOT_TAG]))
    return plan


def _start_again(c: Ctx, guest: str, was_running: bool) -> Plan:
    info = lifecycle.need_domain(c.source, guest)
    plan = Plan(f"start guest {guest} again")
    if not was_running or info.active:
        return plan.noop(f"guest {guest} is {info.state}, as it was before the backup")
    return plan.add(f"start guest {guest} again (it ran before the backup; the copy reads the snapshots)",
                    Call("start", guest))


def _folder(c: Ctx, guest: str, stamp: str) -> Plan:
    folder = c.place.place.folder(guest, stamp)
    plan = Plan(f"make the backup's folder {folder}")
    return plan.add(f"make {folder} on {c.place.place.label}", change("mkdir", "-p", "-m", "0700", "--", folder))


def file_of(lv: LV, codec: tc.Codec) -> str:
    return f"{lv.name}.raw{codec.suffix}"


def _copy(c: Ctx, guest: str, dev: str, stamp: str, codec: tc.Codec) -> Plan:
    lv = dict(disk_lvs(c.source, guest)).get(dev)
    need(lv is not None, f"guest {guest} has no disk {dev} any more: its definition changed; run lv-backup again")
    assert lv is not None
    snaps = _snapshots_of(c.source, lv)
    need(snaps, f"the snapshot of {lv.path} for the backup is missing; run lv-backup again")
    snap = tl.device(max(snaps, key=lambda s: s.name))
    src, place = c.source.site.name, c.place.place
    path = f"{place.folder(guest, stamp)}/{file_of(lv, codec)}"
    t = Transfer(Endpoint(src, codec.compress(snap)), Endpoint(place.label, tc.dd_file(path)),
                 verify=(Endpoint(place.label, sha256_cmd(path)),), measure=(Endpoint(src, sha256_cmd(snap)),),
                 key=dev)
    plan = Plan(f"back up {lv.path} ({human(lv.size)}) to {place}")
    plan.add(f"compress the snapshot with {codec.name} on {src} and stream it into {path}; the sha256 of the stream "
             "must equal the file's, the raw data's is taken on the source", t)
    return plan.add(f"test {path} with {codec.name} (the format's own checksum)", codec.test(path))


def _cleanup(c: Ctx, guest: str) -> Plan:
    site = c.source.site
    plan = Plan(f"remove the backup's snapshots on {site.name}")
    snaps = [s for _, lv in disk_lvs(c.source, guest) for s in _snapshots_of(c.source, lv)]
    for s in snaps:
        plan.add(f"remove {s.path} (the backup read it; the disk stays as it is)", lvc.lvremove(site.vg, s.name))
    return plan if snaps else plan.noop("no snapshot of the backup is left")


def manifest_of(c: Ctx, guest: str, stamp: str, codec: tc.Codec, when: datetime) -> Manifest:
    """The manifest from the source's facts and the copies' results (placeholders in a preview)."""
    info = lifecycle.need_domain(c.source, guest)
    xml = info.inactive_xml or info.xml
    disks = []
    for dev, lv in disk_lvs(c.source, guest):
        t = c.done.get(dev)
        raw = t.measured_sha256 if t else PENDING
        disks.append(DiskBackup(dev, lv.name, lv.size, file_of(lv, codec), raw, t.sha256 if t else PENDING,
                                t.bytes if t else 0))
    return Manifest(guest, stamp, c.source.site.name, c.source.site.vg, c.source.site.lv_prefix, xml,
                    vlans_of(xml, c.source.site), codec.name, tuple(disks), when.isoformat(timespec="seconds"),
                    datetime.now(UTC).isoformat(timespec="seconds"))


def _manifest(c: Ctx, guest: str, stamp: str, codec: tc.Codec, when: datetime, preview: bool = False) -> Plan:
    m = manifest_of(c, guest, stamp, codec, when)
    if not preview:
        missing = [d.dev for d in m.disks if d.sha256 == PENDING]
        if missing:
            raise KvmopsError(f"no checked copy of disk(s) {', '.join(missing)}: the manifest is not written, the "
                              "backup stays incomplete")
    folder, text = c.place.place.folder(guest, stamp), m.to_json()
    path, sig = f"{folder}/{MANIFEST}", f"{folder}/{SIGNATURE}"
    src, place, key = c.source.site.name, c.place.place.label, c.source.site.signing_key
    sign = Transfer(Endpoint(src, signing.sign_cmd(key, text)), Endpoint(place, tc.dd_file(sig)),
                    verify=(Endpoint(place, sha256_cmd(sig)),), key=SIGNATURE)
    plan = Plan(f"sign and write the manifest {path}")
    plan.add(f"sign the manifest on {src} with its key {key} (ssh-keygen -Y sign, namespace {signing.NAMESPACE}; "
             f"the key stays there) into {sig}: a restore checks it against its site's allowed signers", sign)
    return plan.add("write the manifest LAST: only a backup with it is complete and used for a restore",
                    hostfile.write_cmd(path, text))


_FOLDER = re.compile(r"^/.+/[A-Za-z0-9][A-Za-z0-9_.-]*/\d{8}T\d{6}Z$")


def _prune(c: Ctx, guest: str, keep: int) -> Plan:
    plan = Plan(f"keep the {keep} newest complete backups of {guest}" if keep else f"keep every backup of {guest}")
    for b in to_prune(c.place, guest, keep):
        if not _FOLDER.match(b.folder) or not b.folder.startswith(c.place.place.directory + "/"):
            raise SafetyError(f"{b.folder} is not a backup folder of {c.place.place}: not removed")
        plan.add(f"remove the backup {b.stamp} ({keep} newer complete one(s) are kept)",
                 change("rm", "-r", "--one-file-system", "--", b.folder), target=guest)
    plan.notes += [f"the backup {b.folder} is INCOMPLETE ({b.problem}): it is never used; remove it by hand"
                   for b in c.place.of(guest) if not b.complete]
    return plan if plan.steps else plan.noop("no backup to remove" if keep else "keep=0: every backup is kept")


# -- the procedure ---------------------------------------------------------------------------


def _after(c: Ctx, guest: str, when: datetime, stamp: str, codec: tc.Codec) -> Ctx:
    """The preview's view after the snapshots: they exist, the guest is shut off."""
    src = closed(c.source, guest)
    snaps = [LV(names.snapshot_name(lv.name, when), lv.vg, "swi-a-s---", _snap_size(src, lv), lv.name, 0.0, when,
                tags=(SNAPSHOT_TAG,)) for _, lv in disk_lvs(src, guest)]
    return replace(c, source=with_lvs(src, snaps))


def _with_new(c: Ctx, guest: str, stamp: str, codec: tc.Codec, when: datetime) -> Ctx:
    """The preview's view after the manifest: the new backup is complete."""
    m = manifest_of(c, guest, stamp, codec, when)
    new = Backup(guest, stamp, c.place.place.folder(guest, stamp), (), m)
    return replace(c, place=replace(c.place, exists=True, backups=(*c.place.backups, new)))


def procedure(ctx: Ctx, guest: str, when: datetime, *, keep: int = 0, restart: bool = False,
              shutdown_timeout: float = lifecycle.DEFAULT_SHUTDOWN_TIMEOUT) -> Staged[Ctx]:
    """The stages of one backup, previewed from ``ctx`` (each planned again when it runs)."""
    check(ctx, guest, restart)
    to_prune(ctx.place, guest, keep)  # a bad keep is refused before anything
    info = lifecycle.need_domain(ctx.source, guest)
    stamp, codec, was_running = stamp_of(when), codec_of(ctx), info.active
    staged: Staged[Ctx] = Staged(f"back up guest {guest} to {ctx.place.place}",
                                 facts_of=lambda c, side: c.source if side == SOURCE else None)
    after = _after(ctx, guest, when, stamp, codec)
    staged.add(Stage("shut the guest down for the snapshot", SOURCE, lambda c: _stop(c, guest, restart,
                                                                                   shutdown_timeout)),
               _stop(ctx, guest, restart, shutdown_timeout))
    staged.add(Stage("snapshot its disks", SOURCE, lambda c: _snapshots(c, guest, when)),
               _snapshots(replace(ctx, source=closed(ctx.source, guest)), guest, when))
    staged.add(Stage("start the guest again", SOURCE, lambda c: _start_again(c, guest, was_running)),
               _start_again(after, guest, was_running))
    staged.add(Stage("make the backup's folder", PLACE, lambda c: _folder(c, guest, stamp)), _folder(ctx, guest, stamp))
    for dev, _ in disk_lvs(ctx.source, guest):
        staged.add(Stage(f"back up disk {dev}", PLACE, _copier(guest, dev, stamp, codec)),
                   _copy(after, guest, dev, stamp, codec))
    staged.add(Stage("write the manifest", PLACE, lambda c: _manifest(c, guest, stamp, codec, when)),
               _manifest(after, guest, stamp, codec, when, preview=True))
    staged.add(Stage("remove the snapshots", SOURCE, lambda c: _cleanup(c, guest), always=True),
               _cleanup(after, guest))
    staged.add(Stage("retention", PLACE, lambda c: _prune(c, guest, keep)),
               _prune(_with_new(after, guest, stamp, codec, when), guest, keep))
    staged.add(Stage("start the guest again", SOURCE, lambda c: _start_again(c, guest, was_running), on_failure=True),
               _start_again(after, guest, was_running))
    return staged


def _copier(guest: str, dev: str, stamp: str, codec: tc.Codec) -> Callable[[Ctx], Plan]:
    return lambda c: _copy(c, guest, dev, stamp, codec)


def run(source: Host, place: Place, place_host: Host, staged: Staged[Ctx], guest: str, *confirm: str,
        progress: Progress | None = None) -> Ran:
    """Run the backup (apply) or walk its plan; confirmations are checked before the first change."""
    from kvmops.executor import confirmed

    def fresh(ex: Mapping[str, Executor]) -> Ctx:
        return read_ctx(source, place, place_host, guest, {t.key: t for t in ex[PLACE].transferred})

    return run_on({SOURCE: source, PLACE: place_host}, staged, fresh, confirmed(*confirm), progress,
                  places={PLACE: place.directory})


def verify(ctx: Ctx, guest: str, stamp: str, keep: int) -> Verdict:
    """The new backup is complete (its manifest reads back and names every disk file), no
    snapshot is left, and at most ``keep`` complete backups remain (when keep is set)."""
    new = next((b for b in ctx.place.of(guest) if b.stamp == stamp), None)
    checks = [(new is not None and new.complete,
               f"backup {stamp} of {guest} at {ctx.place.place} is complete" + (f" ({new.problem})" if new and
                                                                                 new.problem else ""))]
    if new is not None and new.manifest is not None:
        sizes = dict(new.files)
        checks += [(sizes.get(d.file) == d.compressed_size, f"{d.file}: {human(d.compressed_size)} ({d.lv}, "
                    f"{human(d.size)} raw, sha256 {d.sha256[:16]}...)") for d in new.manifest.disks]
        checks.append((bool(new.signature), f"its manifest is signed ({SIGNATURE}, by {ctx.source.site.name}'s "
                                            f"key {ctx.source.site.signing_key})"))
    checks += [(False, f"the snapshot {s.path} is left") for _, lv in disk_lvs(ctx.source, guest)
               for s in _snapshots_of(ctx.source, lv)]
    if keep:
        kept = len(ctx.place.complete(guest))
        checks.append((kept <= keep, f"{kept} complete backup(s) of {guest} kept (keep={keep})"))
    return Verdict.of(checks)
