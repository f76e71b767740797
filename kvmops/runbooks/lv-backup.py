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
# **Into a BorgBackup repository** (when `repository` is given, or the site file names one:
# `[backup] repository`, `passphrase_file`): one archive per backup, `<guest>-<UTC time>`,
# made by one `borg create` on this host from the snapshots, with the signed manifest inside
# it. Only chunks the repository lacks are stored (and sent, for a repository over SSH). Just
# before the archive is made, each snapshot's sha256 and the manifest's signature are read on
# this host: the manifest names the disks' sums, and a restore checks the whole disk against
# them. Retention is borg's prune of this guest's archives (`keep`: a number, or
# `last=3,daily=7,weekly=4`), then its compact. Without a repository the backup goes to a
# place's folder as described above.
#
# **Parameters:** `guest`, `repository` (`/srv/kvmops-borg` or `ssh://kvmops@nas/srv/borg`;
# "": the site's), `place` (without a repository: `/srv/backups`, `root@nas:/srv/backups`,
# `ssh://root@nas:2222/srv/backups`, or `SITE:/srv/backups` with the SSH settings of a site
# file), `keep`, `restart`.

# %% tags=["parameters"]
site = ""  # the guest's host: site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # the guest's name: only when retention removes older backups
guest = "influx"  # the guest whose disks to back up
repository = ""  # a BorgBackup repository ("": the site's [backup] repository; none: the place below)
place = "demo2:/srv/kvmops-backups"  # without a repository, where: /dir, user@host:/dir, ssh://user@host:port/dir or SITE:/dir
keep = 2  # complete backups of the guest to keep (older ones are removed; a repository takes borg's retention too, see above); 0: keep all
restart = False  # a running guest is shut down for the snapshot and started again right after it
shutdown_timeout = 120.0  # how long the guest may take to power off

# %%
from datetime import UTC, datetime

from kvmops import notebook as nb
from kvmops.procedures.lv_backup_target import BackupTarget

host = nb.open_host(site, apply)
target = BackupTarget.open(host, repository, place)  # the repository, else the place's folder
when = datetime.now(UTC)  # the backup's folder (or archive) and the snapshots' names embed this time

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
    ctx = target.read_ctx(guest)
    print(target.check(ctx, guest, restart))

# %% [markdown]
# ## Plan
#
# The stages with the host each runs on (the source or the place); each is planned again from
# fresh facts just before it runs. The manifest's checksums are filled in by the copy.

# %%
backup = target.procedure(ctx, guest, when, keep=keep, restart=restart, shutdown_timeout=shutdown_timeout)
nb.show_staged(backup)

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
    ran = target.run(backup, guest, confirm, progress=nb.progress)
    nb.show_ran(host, backup, ran)

# %% [markdown]
# ## Verify
#
# The place is read again: the new backup is complete (its manifest reads back and names
# every file, of the size the copy wrote), no snapshot is left, retention kept `keep`.

# %%
with nb.step("Verify the backup", if_fails="list the place's folder; check `lvs` on the host"):
    nb.verify_with(host, lambda: target.verify(guest, when, keep))
host.close()
target.close()
