"""lv-backup into a BorgBackup repository: one archive per backup (:mod:`kvmops.transfer.engine`).

The consistent source is lv-backup's own (:mod:`kvmops.procedures.lv_backup`): the guest shut
off (or shut down just long enough for an LVM snapshot of each disk and started again), the
data read from the snapshots, which are removed on every path out.

The signed manifest goes into the archive with the disks, in the ONE ``borg create`` that makes
it (an archive exists only once complete), so it must name each disk's sha256 before that
command runs. The stage that makes the archive therefore first reads, on the source, each
snapshot's sha256 and the manifest's signature (both reads: ``sha256sum``, ``ssh-keygen -Y
sign``; the key never leaves the host), and is then planned from them: the plan holds the
sealed manifest as ``borg create``'s stdin, and the executor runs it, judged by the gate (an
archive added only to this run's repository). A restore checks the whole disk's sha256
against the manifest (:mod:`kvmops.procedures.lv_backup_restore`). Each disk is read twice
(once for its sha256, once by borg): the price of a manifest sealed inside its own archive.

Retention is the engine's prune over this guest's archives (confirm = the guest's name), then
its compact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from kvmops import names
from kvmops.cmd import Cmd
from kvmops.errors import KvmopsError
from kvmops.executor import Executor
from kvmops.facts import read_facts
from kvmops.facts.engine import read_repo
from kvmops.guests import hostfile, lifecycle
from kvmops.host import Host
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.lvm.facts import LV
from kvmops.plan import Plan, Progress
from kvmops.procedures import lv_backup as bk
from kvmops.procedures.base import Verdict, need
from kvmops.procedures.guest_move import closed
from kvmops.procedures.stages import Ran, Stage, Staged, run_on
from kvmops.site import Site
from kvmops.transfer import commands as tc
from kvmops.transfer import engine as en
from kvmops.transfer import lvm as tl
from kvmops.transfer import signing
from kvmops.transfer.manifest import ENGINE_FORMAT, DiskBackup, Manifest, parse_manifest
from kvmops.transfer.place import PlaceFacts
from kvmops.transfer.result import parse_sha256, sha256_cmd
from kvmops.transfer.xmlmap import vlans_of
from kvmops.units import human

SOURCE = bk.SOURCE
KEEP_ALL = en.Keep()
PENDING_SIGNATURE = "(signed on the source just before the archive is made)"

@dataclass(frozen=True)
class Ctx:
    """The source host and its repository at one moment; ``sealed``: the signed manifest of
    this backup once read (the stage that makes the archive reads it first)."""

    source: HostFacts
    repo: en.Repo
    place: PlaceFacts
    sealed: str = ""
    sums: Mapping[str, str] = field(default_factory=dict)  # disk target -> its snapshot's sha256


def repo_for(site: Site, repository: str = "") -> en.Repo | None:
    """The repository a backup goes into: ``repository`` when given (with the site's passphrase
    file and SSH key), else the site's ``[backup] repository``; None when neither names one
    (the backup goes to a place's folder, :mod:`kvmops.procedures.lv_backup`)."""
    if repository:
        return en.parse_repo(repository, site.backup_passphrase_file, site.backup_ssh_key)
    return en.repo_of(site) if site.backup_repository else None


def read_ctx(source: Host, repo: en.Repo, guest: str, place: PlaceFacts | None = None) -> Ctx:
    """The source's facts (the guest's kept XML, the signing key) and the guest's archives
    (``place``: as read before; no stage plans from them, and each read extracts every manifest)."""
    names.guest_name(guest)
    facts = read_facts(source, Wanted(paths=(hostfile.xml_path(source.site, guest), source.site.signing_key)))
    return Ctx(facts, repo, place if place is not None else read_repo(repo, source, guest))


def _bk(c: Ctx) -> bk.Ctx:
    return bk.Ctx(c.source, c.place)


def snapshot_devices(c: Ctx, guest: str) -> dict[str, str]:
    """Each disk's snapshot device (the one this backup made: the newest tagged one)."""
    out = {}
    for dev, lv in bk.disk_lvs(c.source, guest):
        snaps = [s for s in c.source.lvm.snapshots_of(lv.name) if bk.SNAPSHOT_TAG in s.tags]
        need(snaps, f"the snapshot of {lv.path} for the backup is missing; run lv-backup again")
        out[dev] = tl.device(max(snaps, key=lambda s: s.name))
    return out


def manifest_of(c: Ctx, guest: str, stamp: str, when: datetime, devices: Mapping[str, str],
                sums: Mapping[str, str]) -> Manifest:
    """The manifest of format 2: each disk an item of the archive holding its raw data."""
    info = lifecycle.need_domain(c.source, guest)
    xml = info.inactive_xml or info.xml
    disks = tuple(DiskBackup(dev, lv.name, lv.size, en.device_item(devices[dev]), sums.get(dev, bk.PENDING),
                             sums.get(dev, bk.PENDING), lv.size) for dev, lv in bk.disk_lvs(c.source, guest))
    site = c.source.site
    return Manifest(guest, stamp, site.name, site.vg, site.lv_prefix, xml, vlans_of(xml, site), "zstd", disks,
                    when.isoformat(timespec="seconds"), datetime.now(UTC).isoformat(timespec="seconds"),
                    format=ENGINE_FORMAT, engine=en.ENGINE, archive=en.archive_name(guest, stamp))


def seal_backup(read: Callable[[Cmd], str], c: Ctx, guest: str, stamp: str, when: datetime,
                devices: Mapping[str, str]) -> Ctx:
    """Read each disk's sha256 and the manifest's signature on the source (``read`` runs a read
    command there and returns its stdout) and keep the sealed manifest in the context."""
    sums = {dev: parse_sha256(read(sha256_cmd(path)), path) for dev, path in devices.items()}
    text = manifest_of(c, guest, stamp, when, devices, sums).to_json()
    signature = read(signing.sign_cmd(c.source.site.signing_key, text))
    problem = signing.signature_problem(signature)
    if problem:
        raise KvmopsError(f"signing the manifest with {c.source.site.signing_key} on {c.source.site.name}: {problem}")
    return replace(c, sealed=en.seal(text, signature), sums=sums)


def _create(c: Ctx, guest: str, stamp: str, when: datetime, preview: bool = False) -> Plan:
    devices = snapshot_devices(c, guest)
    if preview:
        sealed = en.seal(manifest_of(c, guest, stamp, when, devices, {}).to_json(), PENDING_SIGNATURE)
    else:
        if not c.sealed:
            raise KvmopsError("the manifest is not signed: the archive is not made, no backup is written")
        text, _ = en.unseal(c.sealed, "the sealed manifest")
        m = parse_manifest(text, "the sealed manifest")
        need(sorted(d.file for d in m.disks) == sorted(en.device_item(d) for d in devices.values()),
             "the snapshots changed since their sha256 was read: run lv-backup again")
        sealed = c.sealed
    plan = en.backup_plan(c.repo, guest, stamp, when, devices.values(), sealed)
    plan.notes.append("each snapshot's sha256 and the manifest's signature are read on the source first; the "
                      "manifest goes into the archive with the disks")
    return plan


def _prune(c: Ctx, guest: str, keep: en.Keep) -> Plan:
    if not keep.any:
        return Plan(f"keep every backup of {guest}").noop("no retention given: every archive is kept")
    return en.prune_plan(c.repo, guest, keep)


def _after(c: Ctx, guest: str, when: datetime) -> Ctx:
    """The preview's view after the snapshots (they exist, the guest is shut off)."""
    b = bk._after(_bk(c), guest, when, bk.stamp_of(when), tc.codec(tc.ZSTD))
    return replace(c, source=b.source)


def check(c: Ctx, guest: str, restart: bool) -> str:
    """What the backup will do, or a refusal saying what to do instead."""
    info, lvs = bk.source_ready(c.source, guest, restart)
    need(c.place.exists, f"the backup repository {c.repo} does not exist: make it first (borg init, "
         "kvmops.transfer.engine.init_plan)")
    lines = [f"guest {guest}: {info.state}"] + [f"disk {dev}: {lv.path} ({human(lv.size)})" for dev, lv in lvs]
    lines.append(f"repository: {c.repo} ({len(c.place.complete(guest))} complete backup(s) of {guest})")
    return "\n".join(lines)


def procedure(c: Ctx, source: Host, guest: str, when: datetime, *, keep: en.Keep = KEEP_ALL,
              restart: bool = False, shutdown_timeout: float = lifecycle.DEFAULT_SHUTDOWN_TIMEOUT) -> Staged[Ctx]:
    """The stages of one backup into the repository, previewed from ``c``."""
    check(c, guest, restart)
    stamp, was_running = bk.stamp_of(when), lifecycle.need_domain(c.source, guest).active
    staged: Staged[Ctx] = Staged(f"back up guest {guest} into {c.repo}", facts_of=lambda x, _side: x.source)
    after = _after(c, guest, when)
    off = replace(c, source=closed(c.source, guest))
    staged.add(Stage("shut the guest down for the snapshot", SOURCE,
                     lambda x: bk._stop(_bk(x), guest, restart, shutdown_timeout)),
               bk._stop(_bk(c), guest, restart, shutdown_timeout))
    staged.add(Stage("snapshot its disks", SOURCE, lambda x: bk._snapshots(_bk(x), guest, when)),
               bk._snapshots(_bk(off), guest, when))
    staged.add(Stage("start the guest again", SOURCE, lambda x: bk._start_again(_bk(x), guest, was_running)),
               bk._start_again(_bk(after), guest, was_running))
    staged.add(Stage("make the archive", SOURCE, lambda x: _create(x, guest, stamp, when),
                     prepare=_sealer(source, guest, stamp, when)),
               _create(after, guest, stamp, when, preview=True))
    staged.add(Stage("remove the snapshots", SOURCE, lambda x: bk._cleanup(_bk(x), guest), always=True),
               bk._cleanup(_bk(after), guest))
    staged.add(Stage("retention", SOURCE, lambda x: _prune(x, guest, keep)), _prune(c, guest, keep))
    staged.add(Stage("start the guest again", SOURCE, lambda x: bk._start_again(_bk(x), guest, was_running),
                     on_failure=True), bk._start_again(_bk(after), guest, was_running))
    return staged


def _sealer(source: Host, guest: str, stamp: str, when: datetime) -> Callable[[Ctx], Ctx]:
    def read(cmd: Cmd) -> str:
        assert not cmd.mutates  # reads only: every change goes through the executor
        return source.runner.run(cmd).stdout

    return lambda c: seal_backup(read, c, guest, stamp, when, snapshot_devices(c, guest))


def run(source: Host, repo: en.Repo, staged: Staged[Ctx], guest: str, *confirm: str,
        progress: Progress | None = None, place: PlaceFacts | None = None) -> Ran:
    """Run the backup (apply) or walk its plan; confirmations are checked before the first change.
    ``place``: the repository as read for the plan (no stage plans from it: not read again)."""
    from kvmops.executor import confirmed

    read: list[PlaceFacts] = [place] if place is not None else []  # the repository is read once

    def fresh(_ex: Mapping[str, Executor]) -> Ctx:
        c = read_ctx(source, repo, guest, read[0] if read else None)
        read[:] = [c.place]
        return c

    return run_on({SOURCE: source}, staged, fresh, confirmed(*confirm), progress, repos={SOURCE: repo.url})


def verify(c: Ctx, guest: str, stamp: str) -> Verdict:
    """The new archive is a complete backup (its sealed manifest reads back, names every disk
    item, is signed) and no snapshot is left."""
    new = next((b for b in c.place.of(guest) if b.stamp == stamp), None)
    checks = [(new is not None and new.complete, f"archive {en.archive_name(guest, stamp)} in {c.repo} is a "
               "complete backup" + (f" ({new.problem})" if new and new.problem else ""))]
    if new is not None and new.manifest is not None:
        checks += [(True, f"{d.file}: {d.lv}, {human(d.size)}, sha256 {d.sha256[:16]}...") for d in new.manifest.disks]
        checks.append((bool(new.signature), f"its manifest is signed by {c.source.site.name}'s key "
                                            f"{c.source.site.signing_key}"))
    checks += [(False, f"the snapshot {s.path} is left") for _, lv in bk.disk_lvs(c.source, guest)
               for s in _tagged(c.source, lv)]
    return Verdict.of(checks)


def _tagged(facts: HostFacts, lv: LV) -> tuple[LV, ...]:
    return tuple(s for s in facts.lvm.snapshots_of(lv.name) if bk.SNAPSHOT_TAG in s.tags)
