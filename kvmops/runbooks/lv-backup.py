# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Back up a guest's disks
#
# A consistent, compressed copy of every disk LV of a guest at a backup place: a directory on
# another host over SSH (strict host keys) or on this machine. Snapshots (guide 4.2.5) protect
# against mistakes on the host; a backup elsewhere protects against losing the host.
#
# **Consistent:** the guest is shut off while an LVM snapshot of each disk is taken; with
# `restart=True` a running guest is shut down for that moment and started again right after
# it (its downtime is a shutdown and a boot, not the copy). The copy reads the snapshots,
# which are removed on every path out.
#
# **What is written:** `<place>/<guest>/<UTC time>/<lv>.raw.zst` (zstd when the host and
# the place both have it, else `.raw.gz` with gzip; the plan says which), each checked: the
# sha256 of the stream equals the file's on the place, and the compressor's own test passes.
# Then, **last**, `manifest.json`: the guest's definition, each disk's LV, size and the sha256
# of its raw data and of its file, the times and the kvmops version. A folder without it is an
# incomplete backup: never used by `lv-backup-restore`, never counted as kept.
#
# **Retention:** `keep` = how many complete backups of the guest to keep; older ones are
# removed (needs `confirm` = the guest's name). The newest complete one is never removed, nor
# is an incomplete one (they are reported: remove them by hand).
#
# **Parameters:** `guest`, `place` (`/srv/backups`, `root@nas:/srv/backups`,
# `ssh://root@nas:2222/srv/backups`, or `SITE:/srv/backups` with the SSH settings of a site
# file), `keep`, `restart`.

# %% tags=["parameters"]
site = ""  # the guest's host: site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # the guest's name: only when retention removes older backups
guest = "influx"  # the guest whose disks to back up
place = "demo2:/srv/kvmops-backups"  # where: /dir, user@host:/dir, ssh://user@host:port/dir or SITE:/dir
keep = 2  # complete backups of the guest to keep (older ones are removed); 0: keep all
restart = False  # a running guest is shut down for the snapshot and started again right after it
shutdown_timeout = 120.0  # how long the guest may take to power off

# %%
from datetime import UTC, datetime

from kvmops import notebook as nb
from kvmops.procedures import lv_backup as proc
from kvmops.transfer.place import parse_place
from kvmops.facts.place import place_host

host = nb.open_host(site, apply)
where = parse_place(place)
at = place_host(where, host.site, apply=apply)
when = datetime.now(UTC)  # the backup's folder and the snapshots' names embed this time

# %% [markdown]
# ## Preconditions
#
# The guest, its disk LVs and room for their snapshots on the host; what the place holds.
#
# *If this step fails:* a running guest: shut it down first or set `restart=True`. An SSH
# place that refuses: its host key must be in your known_hosts (kvmops never accepts an
# unknown key) and your key in its authorized_keys.

# %%
with nb.step("Check the guest and the place", if_fails="read the message; nothing was changed"):
    ctx = proc.read_ctx(host, where, at, guest)
    print(proc.check(ctx, guest, restart))

# %% [markdown]
# ## Plan
#
# The stages with the host each runs on (the source or the place); each is planned again from
# fresh facts just before it runs. The manifest's checksums are filled in by the copy.

# %%
backup = proc.procedure(ctx, guest, when, keep=keep, restart=restart, shutdown_timeout=shutdown_timeout)
nb.note(backup.markdown())

# %% [markdown]
# ## Back up
#
# Runs only with `apply=True`, holding the guest's lock on its host. A confirmation missing
# for retention refuses the whole run before the first change.
#
# *If this step fails:* the snapshots are removed and a guest that ran is started again; the
# backup's folder stays without a manifest (incomplete: never used). Run again: a new backup
# is made; remove the incomplete folder by hand.

# %%
with nb.step("Back up the disks", if_fails="read the message; an unfinished backup has no manifest and is never used"):
    with nb.locked(host, guest, "lv-backup"):
        for line in proc.run(host, where, at, backup, guest, confirm,
                             progress=lambda line: print(f"    {line}", flush=True)).lines:
            print(line)
    if not host.apply:
        print("(plan only: nothing was changed; run with apply=True to execute it)")

# %% [markdown]
# ## Verify
#
# The place is read again: the new backup is complete (its manifest reads back and names
# every file, of the size the copy wrote), no snapshot is left, retention kept `keep`.

# %%
with nb.step("Verify the backup", if_fails="list the place's folder; check `lvs` on the host"):
    if host.apply:
        verdict = proc.verify(proc.read_ctx(host, where, at, guest), guest, proc.stamp_of(when), keep)
        print(verdict.render())
        nb.check(verdict.ok, "verification FAILED: see the lines above")
    else:
        print("plan only: nothing was changed, so nothing is verified")
host.close()
at.close()
