"""lv-backup-verify: a backup proven by booting it (the one boot verdict: a login prompt).

The chosen backup (the newest complete one by default) is restored into new LVs under a
scratch name (``<guest>-verify``) and defined with **no network** (every interface left out:
the copy reaches nothing and nothing reaches it, so it can never answer in place of the real
guest), started, and watched until its console shows a login prompt. Then the scratch guest
is forced off, undefined, and its LVs removed: on every path out (cleanup stages). The LVs
are removed without a confirmation because this very run made them (the gate's rule); the
scratch guest's destroy and undefine name it as their target, which the run confirms for the
operator: it refuses to start when a guest or an LV of that name exists already.
"""

from __future__ import annotations

from kvmops import names
from kvmops.guests import hostfile
from kvmops.lvm import commands as lvc
from kvmops.plan import Call, Plan
from kvmops.procedures import lv_backup_restore as rs
from kvmops.procedures.base import need
from kvmops.procedures.stages import Stage, Staged
from kvmops.transfer.place import Backup

SUFFIX = "-verify"


def scratch_name(guest: str) -> str:
    """The scratch guest's name: ``web1-verify``."""
    return names.guest_name(f"{names.guest_name(guest)}{SUFFIX}")


def check(c: rs.Ctx, backup: Backup, scratch: str) -> str:
    """What the verification does, refused when the scratch name is taken (a guest, an LV)."""
    site = c.target.site
    need(c.target.domain(scratch) is None, f"a guest {scratch} exists on {site.name}: remove it first (guest-remove); "
         "the verification makes and removes its own scratch guest")
    taken = [d.lv for d in rs.disks(c, backup, scratch) if d.state != "new"]
    need(not taken, f"the scratch LV(s) {', '.join(taken)} exist in VG {site.vg}: remove them first (lv-remove)")
    return rs.check(c, backup, scratch, define=True, isolated=True)


def _lv_names(c: rs.Ctx, backup: Backup, scratch: str) -> tuple[tuple[str, str], ...]:
    """Each scratch LV with the tag naming the backup disk it is restored from."""
    m = rs.manifest(backup)
    return tuple((d.lv, rs.of_tag(m, d.backup.lv)) for d in rs.disks(c, backup, scratch))


def _off(c: rs.Ctx, scratch: str, preview: bool = False) -> Plan:
    plan = Plan(f"force the scratch guest {scratch} off")
    info = c.target.domain(scratch)
    if not preview and (info is None or not info.active):
        return plan.noop(f"guest {scratch} does not run")
    return plan.add(f"force {scratch} off (a scratch copy: nothing in it is kept)", Call("destroy", scratch),
                    target=scratch)


def _undefine(c: rs.Ctx, scratch: str, preview: bool = False) -> Plan:
    plan = Plan(f"undefine the scratch guest {scratch}")
    if not preview and c.target.domain(scratch) is None:
        plan.noop(f"guest {scratch} is not defined")
    else:
        plan.add(f"remove {scratch} from libvirt", Call("undefine", scratch), target=scratch)
    path = hostfile.xml_path(c.target.site, scratch)
    if preview or c.target.exists(path):
        plan.add(f"keep {path} as {path}{hostfile.UNDEFINED_SUFFIX}", hostfile.retire_cmd(path))
    return plan


def _remove_lvs(c: rs.Ctx, scratch: str, lvs: tuple[tuple[str, str], ...], preview: bool = False) -> Plan:
    site = c.target.site
    plan = Plan(f"remove the scratch LVs of {scratch}")
    for name, tag in lvs:
        have = c.target.lvm.get(name)
        if preview or (have is not None and tag in have.tags):
            plan.add(f"remove {site.vg}/{name} (restored by this run; the gate allows it only so)",
                     lvc.lvremove(site.vg, name))
    return plan if plan.steps else plan.noop("no scratch LV is left")


def procedure(c: rs.Ctx, backup: Backup, *, scratch: str = "",
              boot_seconds: float = rs.DEFAULT_BOOT_SECONDS) -> Staged[rs.Ctx]:
    """The restore's stages under the scratch name (no network, started, boot verdict), then
    the cleanup stages (each also after a failure)."""
    m = rs.manifest(backup)
    scratch = scratch or scratch_name(m.guest)
    check(c, backup, scratch)
    lvs = _lv_names(c, backup, scratch)
    staged = rs.procedure(c, backup, new_name=scratch, define=True, start=True, isolated=True,
                          boot_seconds=boot_seconds)
    staged.title = f"verify backup {m.stamp} of {m.guest} by booting it as {scratch} on {c.target.site.name}"
    staged.add(Stage("force the scratch guest off", rs.TARGET, lambda x: _off(x, scratch), always=True),
               _off(c, scratch, preview=True))
    staged.add(Stage("undefine the scratch guest", rs.TARGET, lambda x: _undefine(x, scratch), always=True),
               _undefine(c, scratch, preview=True))
    staged.add(Stage("remove the scratch LVs", rs.TARGET, lambda x: _remove_lvs(x, scratch, lvs),
                     always=True), _remove_lvs(c, scratch, lvs, preview=True))
    return staged
