"""lv-backup-restore: a complete backup (one with its manifest) restored into NEW LVs, each
checked against the manifest's sha256; optionally the guest defined from the manifest's XML
(under a new name: new UUID and MACs, so it can run beside the original) and started until
its console shows a login prompt.

An existing LV is overwritten only with ``confirm=VG/LV`` (same size, not in use). The new LVs
are tagged (:data:`RESTORING` -> :data:`RESTORED`, and which backup they come from), so a re-run
after an interruption streams again into the same LVs, never beside them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from kvmops import guards, names
from kvmops.errors import InvalidInput, NotFound, SafetyError
from kvmops.facts import read_facts
from kvmops.facts.engine import read_repo
from kvmops.facts.place import read_place, verify_backups
from kvmops.guests import hostfile, lifecycle, macs
from kvmops.guests.xml import read_domain
from kvmops.host import Host
from kvmops.hostfacts import HostFacts, Wanted, lv_free, with_lvs
from kvmops.lvm.facts import LV
from kvmops.plan import Booted, Call, Endpoint, Plan, Progress, Transfer, Wait
from kvmops.procedures.base import Verdict, need
from kvmops.procedures.stages import Ran, Stage, Staged, run_on
from kvmops.site import Site
from kvmops.transfer import commands as tc
from kvmops.transfer import engine as en
from kvmops.transfer import lvm as tl
from kvmops.transfer.engine import Repo
from kvmops.transfer.manifest import ENGINE_FORMAT, DiskBackup, Manifest
from kvmops.transfer.place import Backup, Place, PlaceFacts
from kvmops.transfer.result import sha256_cmd
from kvmops.transfer.xmlmap import XmlMap, bridge_map, map_xml, media_of, nic_count
from kvmops.units import human

TARGET, PLACE = "target", "place"
RESTORING, RESTORED = tl.RESTORE_INCOMPLETE, "kvmops-restored"
DEFAULT_BOOT_SECONDS = 300.0


@dataclass(frozen=True)
class Ctx:
    """The target host and the place at one moment."""

    target: HostFacts
    place: PlaceFacts
    repo: Repo | None = None  # a backup in an engine's repository (manifest format 2) is read from there


def choose(place: PlaceFacts, guest: str, stamp: str = "", *, allow_unsigned: bool = False) -> Backup:
    """The backup to restore: ``stamp``, else the newest complete one. An incomplete one is
    never used (it has no manifest, or one that does not read back); one whose manifest is not
    signed by an allowed signer (unsigned, altered, another host's key, or no allowed signers
    to check against) only with ``allow_unsigned`` (the operator's explicit word)."""
    names.guest_name(guest)
    found = place.of(guest)
    complete = [b for b in found if b.complete]
    if stamp:
        b = next((x for x in found if x.stamp == stamp), None)
        if b is None:
            raise NotFound(f"no backup {stamp} of {guest} at {place.place} (backups: "
                           f"{', '.join(x.stamp for x in found) or 'none'})")
        need(b.complete, f"the backup {stamp} of {guest} is INCOMPLETE ({b.problem}): it is never used for a restore")
        return trusted(b, complete, allow_unsigned)
    if not complete:
        raise NotFound(f"no complete backup of {guest} at {place.place}"
                       + (f" ({len(found)} incomplete: no manifest)" if found else ""))
    return trusted(complete[0], complete, allow_unsigned)


def trusted(b: Backup, complete: list[Backup], allow_unsigned: bool) -> Backup:
    """``b`` when its manifest's signature is good (or the operator allows one that is not)."""
    trust = b.trust
    if (trust is not None and trust.good) or allow_unsigned:
        return b
    why = trust.detail if trust is not None else "its signature was not checked"
    good = [x.stamp for x in complete if x.trust is not None and x.trust.good]
    raise SafetyError(f"the backup {b.stamp} of {b.guest} is not trusted: {why}. A manifest only an allowed "
                      "signer wrote is restored; to restore this one anyway, set allow_unsigned=True (its "
                      "definition is still judged by the safety gate)"
                      + (f"; backups signed by an allowed signer: {', '.join(good)}" if good else ""))


def manifest(backup: Backup) -> Manifest:
    assert backup.manifest is not None
    return backup.manifest


def new_lv_name(m: Manifest, site: Site, new_name: str, lv: str) -> str:
    """The LV a disk is restored into: its own name, or for a guest restored under ``new_name``
    the old guest's LV name with the new guest's (``vminflux`` -> ``vminflux-test``)."""
    if not new_name or new_name == m.guest:
        return lv
    old = m.lv_prefix + m.guest
    base = site.guest_lv(new_name)
    if lv == old:
        return base
    return names.lv_name(base + lv[len(old):] if lv.startswith(old) else f"{base}-{lv}")


def of_tag(m: Manifest, lv: str) -> str:
    """The tag naming the backup a restored LV comes from."""
    return tl.tag(f"kvmops-restore-of:{m.guest}/{m.stamp}/{lv}")


@dataclass(frozen=True)
class Disk:
    """A disk of the backup and the LV it goes into (``state``: new, ours, or overwrite)."""

    backup: DiskBackup
    lv: str
    there: LV | None
    state: str  # "new" | RESTORING | RESTORED | "overwrite"


def disks(c: Ctx, backup: Backup, new_name: str) -> tuple[Disk, ...]:
    m = manifest(backup)
    out = []
    extent = c.target.lvm.vg.extent_size
    for d in m.disks:
        name = new_lv_name(m, c.target.site, new_name, d.lv)
        guards.not_host_lv(name, c.target.site.lv_prefix)
        need(not extent or d.size % extent == 0, f"the backup's disk {d.lv} has {d.size} bytes, not a whole number "
             f"of VG {c.target.site.vg}'s {human(extent)} extents: an LV of that size cannot be made there")
        there = c.target.lvm.get(name)
        if there is None:
            out.append(Disk(d, name, None, "new"))
            continue
        path = there.path
        need(there.size == d.size, f"{path} exists with {human(there.size)}, the backup's disk {d.lv} has "
             f"{human(d.size)}: restore under another name (new_name), or remove that LV first")
        if of_tag(m, d.lv) in there.tags:
            out.append(Disk(d, name, there, RESTORED if RESTORED in there.tags else RESTORING))
        else:
            lv_free(c.target, there, "restoring over it")
            out.append(Disk(d, name, there, "overwrite"))
    return tuple(out)


def read_ctx(target: Host, place: Place, place_host: Host, guest: str, new_name: str = "", stamp: str = "") -> Ctx:
    """The place's facts, then the target's (bridges, the new guest's kept XML, the files the
    backup's definition names)."""
    return _target_ctx(target, verify_backups(read_place(place, place_host, guest), target.site, guest), guest,
                       new_name, stamp)


def read_repo_ctx(target: Host, repo: Repo, guest: str, new_name: str = "", stamp: str = "",
                  place: PlaceFacts | None = None) -> Ctx:
    """:func:`read_ctx` for backups in an engine's repository (borg runs on ``target``): the
    guest's archives (signatures checked against the target's allowed signers; ``place``: as
    read before), then the target's facts."""
    pf = place if place is not None else verify_backups(read_repo(repo, target, guest), target.site, guest)
    return replace(_target_ctx(target, pf, guest, new_name, stamp), repo=repo)


def _target_ctx(target: Host, pf: PlaceFacts, guest: str, new_name: str, stamp: str) -> Ctx:
    """The target's facts for restoring ``stamp`` (else the newest complete backup) of ``guest``
    from ``pf``: bridges, the new guest's kept XML, the files the backup's definition names."""
    name = names.guest_name(new_name or guest)
    chosen = {b.stamp: b for b in pf.complete(guest)}
    done = chosen.get(stamp) if stamp else next(iter(chosen.values()), None)
    media = media_of(manifest(done).xml) if done is not None else ()
    wanted = Wanted(net=True, files=(hostfile.xml_path(target.site, name),), paths=media)
    return Ctx(read_facts(target, wanted), pf)


# -- checks ----------------------------------------------------------------------------------


def mapping(c: Ctx, backup: Backup, new_name: str, isolated: bool = False) -> XmlMap:
    """How the backup's definition becomes the target's; ``isolated``: with no network at all
    (a scratch guest that proves the restore boots: its bridges need not exist here)."""
    m = manifest(backup)
    site = c.target.site
    bridges = {} if isolated else bridge_map(m.networks, site)
    have = set(c.target.net.bridges())
    for old, new in bridges.items():
        need(new in have, f"the guest's bridge {old} carried VLAN {m.networks[old]}; its bridge on {site.name} is "
             f"{new}, which does not exist there: create it first (runbook host-network)")
    paths: dict[str, str] = {}
    for d in disks(c, backup, new_name):
        paths[f"/dev/{m.source_vg}/{d.backup.lv}"] = tl.device_of(site.vg, d.lv)
        paths[f"/dev/mapper/{m.source_vg.replace('-', '--')}-{d.backup.lv.replace('-', '--')}"] = \
            tl.device_of(site.vg, d.lv)
    dom = read_domain(m.xml)
    for path in (dom.kernel, dom.initrd):
        need(not path or c.target.exists(path), f"the guest boots the kernel/initrd {path}, which is not on "
             f"{site.name}: copy it there first")
    eject = frozenset(p for p in (dom.cdrom,) if p and not c.target.exists(p))
    name = new_name or m.guest
    copy = name != m.guest
    nics = 0 if isolated else nic_count(m.xml)  # isolated: no NIC left, so no MAC to choose
    chosen = macs.choose(site.name, name, nics, c.target.macs_taken(name)) if copy else ()
    return XmlMap(name, paths, bridges, site.emulator, site.domain_type, new_identity=copy, eject=eject, macs=chosen,
                  isolated=isolated)


def check(c: Ctx, backup: Backup, new_name: str, define: bool, isolated: bool = False) -> str:
    """What the restore will do, or a refusal saying what to do."""
    m = manifest(backup)
    name = new_name or m.guest
    if define:
        need(c.target.domain(name) is None or _ours(c, name, backup, new_name),
             f"a guest {name} exists on {c.target.site.name}: restore under another name (new_name)")
    ds = disks(c, backup, new_name)
    new = sum(d.backup.size for d in ds if d.state == "new")
    need(new <= c.target.lvm.vg.free, f"VG {c.target.site.vg} has {human(c.target.lvm.vg.free)} free, the new LVs "
         f"need {human(new)}")
    lines = [f"backup {m.stamp} of {m.guest} from {m.source_site} ({m.compression}; taken {m.started})",
             "manifest: " + (backup.trust.detail if backup.trust is not None else "its signature was not checked")
             + ("" if backup.trust is not None and backup.trust.good else
                " (restored only because allow_unsigned=True)")]
    lines += [f"disk {d.backup.dev}: {d.backup.lv} ({human(d.backup.size)}) -> {c.target.site.vg}/{d.lv}: "
              + {"new": "a new LV", RESTORING: "an interrupted restore of this backup: streamed again into it",
                 RESTORED: "restored from this backup before: checked again",
                 "overwrite": "EXISTS: overwritten only with confirm=" + (d.there.path if d.there else "")}[d.state]
              for d in ds]
    if define:
        xm = mapping(c, backup, new_name, isolated)
        lines += ["no network: every interface of its definition is left out"] if isolated else []
        own = ", ".join(m for m in read_domain(manifest(backup).xml).macs if m) or "(none in the backup's XML)"
        how = ("a new UUID (no NIC, so no MAC address)" if xm.new_identity and isolated
               else f"a new UUID and new MAC addresses {', '.join(xm.macs)}" if xm.new_identity
               else f"its own UUID and MAC addresses {own}")
        lines.append(f"guest {xm.name} defined with {how}")
        lines += [f"bridge {o} -> {n}" for o, n in xm.bridges.items()]
        lines += [f"CD-ROM {p}: not on {c.target.site.name}, left empty" for p in xm.eject]
    overwrite = overwrite_targets(c, backup, new_name)
    if overwrite:
        lines.append(f"to restore over the existing LVs set confirm={overwrite!r}")
    return "\n".join(lines)


def _ours(c: Ctx, name: str, backup: Backup, new_name: str) -> bool:
    """The guest ``name`` on the target is this restore's own: its disks are LVs restored from this backup."""
    m = manifest(backup)
    mine = {}
    for d in m.disks:
        lv = c.target.lvm.get(new_lv_name(m, c.target.site, new_name, d.lv))
        if lv is not None and of_tag(m, d.lv) in lv.tags:
            mine[lv.path] = lv
    theirs = set(c.target.disks_of.get(name, ()))
    return bool(theirs) and theirs <= set(mine)


def overwrite_targets(c: Ctx, backup: Backup, new_name: str) -> str:
    """What ``confirm`` must say to restore over existing LVs (comma-separated), or ""."""
    return ",".join(d.there.path for d in disks(c, backup, new_name) if d.state == "overwrite" and d.there)


# -- the stages ------------------------------------------------------------------------------


def _lvs(c: Ctx, backup: Backup, new_name: str) -> Plan:
    site, m = c.target.site, manifest(backup)
    plan = Plan(f"the LVs to restore into on {site.name}")
    for d in disks(c, backup, new_name):
        if d.state == "new":
            plan.add(f"create {site.vg}/{d.lv} ({human(d.backup.size)}), tagged as an incomplete restore",
                     tl.lvcreate_tagged(site.vg, d.lv, d.backup.size, [of_tag(m, d.backup.lv), RESTORING]))
        elif d.state == "overwrite" and d.there is not None:
            plan.add(f"mark {d.there.path} as being restored from backup {m.stamp}: its data is REPLACED",
                     tl.retag(site.vg, d.lv, add=[of_tag(m, d.backup.lv), RESTORING]), target=d.there.path)
        else:
            plan.noop(f"{site.vg}/{d.lv} is this backup's restore already")
    return plan


def _disk(c: Ctx, backup: Backup, dev: str, new_name: str) -> Plan:
    site, m, place = c.target.site, manifest(backup), c.place.place
    d = next((x for x in disks(c, backup, new_name) if x.backup.dev == dev), None)
    need(d is not None, f"the backup has no disk {dev}")
    assert d is not None
    need(d.state != "overwrite", f"{site.vg}/{d.lv} is not marked for this restore; run again")
    path, there = f"{backup.folder}/{d.backup.file}", tl.device_of(site.vg, d.lv)
    plan = Plan(f"restore {d.backup.lv} into {site.vg}/{d.lv}")
    if d.state == RESTORED:  # checked when it was restored; a guest may have written to it since: never again
        return plan.noop(f"{site.vg}/{d.lv} is marked restored from this backup already (its sha256 was checked)")
    if m.format == ENGINE_FORMAT:
        need(c.repo is not None, f"the backup {m.stamp} of {m.guest} is in a {m.engine} repository: name it")
        assert c.repo is not None
        source = Endpoint(site.name, en.extract(c.repo, m.archive, d.backup.file))
        how = f"extract {d.backup.file} of {c.repo}::{m.archive} ({m.engine}) on {site.name}"
    else:
        codec = tc.codec(m.compression)
        source = Endpoint(place.label, codec.decompress(path))
        how = f"decompress {path} ({codec.name}) on {place.label}"
    t = Transfer(source, Endpoint(site.name, tc.dd_write(there)), size=d.backup.size,
                 verify=(Endpoint(site.name, sha256_cmd(there)),), expect=d.backup.sha256, key=dev)
    plan.add(f"{how} and stream it into {site.vg}/{d.lv}; its sha256 must be the manifest's, on both ends", t)
    return plan.add("mark the restore complete (checked)", tl.retag(site.vg, d.lv, add=[RESTORED], remove=[RESTORING]))


def _define(c: Ctx, backup: Backup, new_name: str, isolated: bool = False) -> Plan:
    xm = mapping(c, backup, new_name, isolated)
    site = c.target.site
    plan = Plan(f"define guest {xm.name} on {site.name}")
    if c.target.domain(xm.name) is not None:
        if _ours(c, xm.name, backup, new_name):
            return plan.noop(f"guest {xm.name} is defined with the restored disks already")
        raise SafetyError(f"a guest {xm.name} exists on {site.name}: restore under another name; nothing more changed")
    xml = map_xml(manifest(backup).xml, xm)
    path = hostfile.xml_path(site, xm.name)
    kept = c.target.file(path)
    if kept != xml:
        plan.add(f"keep the domain XML in {path}" + (" (replacing another one)" if kept else ""),
                 hostfile.write_cmd(path, xml), target=xm.name if kept else None)
    return plan.add(f"define guest {xm.name} from the backup's definition (disks and bridges mapped)",
                    lifecycle.define_call(site, xm.name, xml, None))


def _start(c: Ctx, name: str, boot_seconds: float) -> Plan:
    plan = Plan(f"start guest {name} and verify that it boots")
    info = c.target.domain(name)
    if info is not None and info.active:
        return plan.noop(f"guest {name} runs already")
    plan.add(f"start guest {name}", Call("start", name))
    return plan.add(f"wait up to {boot_seconds:g} s for a login prompt on its console",
                    Wait(f"read the console of {name} until a login prompt", Booted(name, boot_seconds, way_out=(
                        "The restored disks stay as they are: look at the guest with guest-unreachable, "
                        "or remove it (guest-remove) and restore again"))))


def procedure(c: Ctx, backup: Backup, *, new_name: str = "", define: bool = False, start: bool = False,
              boot_seconds: float = DEFAULT_BOOT_SECONDS, isolated: bool = False) -> Staged[Ctx]:
    """The stages of the restore, previewed from ``c`` (each planned again when it runs);
    ``isolated``: the guest is defined with no network (see :func:`mapping`)."""
    if new_name:
        names.guest_name(new_name)
    if start and not define:
        raise InvalidInput("start=True needs define=True (a guest must be defined to start)")
    need(boot_seconds > 0, "boot_seconds must be above 0")
    check(c, backup, new_name, define, isolated)
    m = manifest(backup)
    name = new_name or m.guest
    staged: Staged[Ctx] = Staged(f"restore backup {m.stamp} of {m.guest} on {c.target.site.name}",
                                 facts_of=lambda c, side: c.target if side == TARGET else None)
    staged.add(Stage("the LVs to restore into", TARGET, lambda x: _lvs(x, backup, new_name)),
               _lvs(c, backup, new_name))
    after = _preview_lvs(c, backup, new_name)
    for d in m.disks:
        staged.add(Stage(f"restore disk {d.dev}", TARGET, _restorer(backup, d.dev, new_name)),
                   _disk(after, backup, d.dev, new_name))
    if define:
        staged.add(Stage("define the guest", TARGET, lambda x: _define(x, backup, new_name, isolated)),
                   _define(after, backup, new_name, isolated))
    if start:
        staged.add(Stage("start it and verify that it boots", TARGET, lambda x: _start(x, name, boot_seconds)),
                   _start(after, name, boot_seconds))
    return staged


def _restorer(backup: Backup, dev: str, new_name: str) -> Callable[[Ctx], Plan]:
    return lambda x: _disk(x, backup, dev, new_name)


def _preview_lvs(c: Ctx, backup: Backup, new_name: str) -> Ctx:
    m = manifest(backup)
    lvs = [LV(d.lv, c.target.site.vg, "-wi-a-----", d.backup.size, "", None, None,
              tags=tuple(sorted((of_tag(m, d.backup.lv), RESTORING)))) for d in disks(c, backup, new_name)
           if d.state in ("new", "overwrite")]
    return replace(c, target=with_lvs(c.target, lvs))


def run(target: Host, place: Place, place_host: Host, staged: Staged[Ctx], backup: Backup, new_name: str,
        *confirm: str, progress: Progress | None = None) -> Ran:
    """Run the restore (apply) or walk its plan; confirmations are checked before the first change."""
    from kvmops.executor import confirmed

    m = manifest(backup)
    return run_on({TARGET: target, PLACE: place_host}, staged,
                  lambda _ex: read_ctx(target, place, place_host, m.guest, new_name, m.stamp), confirmed(*confirm),
                  progress, places={PLACE: place.directory})


def run_from_repo(target: Host, repo: Repo, staged: Staged[Ctx], backup: Backup, new_name: str, *confirm: str,
                  progress: Progress | None = None, place: PlaceFacts | None = None) -> Ran:
    """:func:`run` for a backup in an engine's repository: borg on ``target`` extracts each
    disk. The repository is read once (``place``: as read for the plan; a restore never writes
    it): the stages plan from the target's facts."""
    from kvmops.executor import confirmed

    m = manifest(backup)
    read: list[PlaceFacts] = [place] if place is not None else []

    def fresh(_ex: object) -> Ctx:
        c = read_repo_ctx(target, repo, m.guest, new_name, m.stamp, read[0] if read else None)
        read[:] = [c.place]
        return c

    return run_on({TARGET: target}, staged, fresh, confirmed(*confirm), progress, repos={TARGET: repo.url})


def verify(c: Ctx, backup: Backup, new_name: str, define: bool, start: bool) -> Verdict:
    """Every disk restored (tagged as checked against the manifest's sha256); the guest defined
    with those disks and running, when asked."""
    m = manifest(backup)
    site = c.target.site
    checks = []
    for d in m.disks:
        lv = c.target.lvm.get(new_lv_name(m, site, new_name, d.lv))
        checks.append((lv is not None and RESTORED in lv.tags and lv.size == d.size,
                       f"{site.vg}/{new_lv_name(m, site, new_name, d.lv)}: {human(d.size)}, sha256 {d.sha256[:16]}... "
                       "as in the manifest (checked on the target)"))
    name = new_name or m.guest
    info = c.target.domain(name)
    if define:
        checks.append((info is not None and _ours(c, name, backup, new_name),
                       f"guest {name} is defined on {site.name} with the restored disks"))
    if start:
        checks.append((info is not None and info.active, f"guest {name} runs (its boot showed a login prompt)"))
    return Verdict.of(checks)
