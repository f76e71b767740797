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
# # Restore a guest's disks from a backup
#
# A backup made by `lv-backup` written back into **new** LVs on a host, each checked against
# the sha256 its manifest holds; optionally the guest defined from the backup's definition
# and started until its console shows a login prompt (a restore test).
#
# **When to use it:** a guest's disk is lost or damaged beyond its snapshots; a host is gone
# (restore on another one); or, regularly, to prove that the backups can be restored (with a
# `new_name`, so the copy runs beside the original).
#
# **From where:** a BorgBackup repository (`repository`, or the site file's `[backup]
# repository`): borg on this host extracts each disk of the archive `<guest>-<stamp>`; without
# one, a place's folder as `lv-backup` wrote it there (`place`), decompressed on the place.
#
# **Which backup:** the newest complete one of the guest, or `backup` = its time stamp. Only a
# backup with its manifest is ever used: a folder without one did not finish.
#
# **Whose backup:** the host that made a backup signed its manifest with its own key
# (`manifest.json.sig`, `ssh-keygen -Y sign`). A restore checks that signature against the
# allowed signers the site names (`[backup] allowed_signers`), as the host the manifest names:
# a manifest written or changed by anyone else (whoever can write to the place) is refused.
# `allow_unsigned=True` restores one anyway (an old unsigned backup, after you checked it).
#
# **Where to:** LVs named like the originals, or for a `new_name` after it (`vminflux` ->
# `vminflux-test`). An existing LV is overwritten only with `confirm` = that `VG/LV` (same
# size, not in use); a restore interrupted before is recognised by its LVM tags and streamed
# again into the same LVs. With `define=True` the guest is defined from the backup's XML:
# disks to the new LVs, bridges mapped by VLAN; under a `new_name` with a new UUID and new
# MAC addresses (it may run beside the original), under its own name with its own.
#
# **Parameters:** `repository`, `place`, `guest`, `backup`, `new_name`, `define`, `start`, `confirm`,
# `allow_unsigned`.

# %% tags=["parameters"]
site = ""  # the host to restore on: site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # only to restore over existing LVs: each VG/LV, comma-separated
repository = ""  # a BorgBackup repository ("": the site's [backup] repository; none: the place below)
place = "demo2:/srv/kvmops-backups"  # without a repository, where the backups are: /dir, user@host:/dir, ssh://user@host:port/dir, SITE:/dir
guest = "web1"  # whose backup to restore
backup = ""  # the backup's time stamp (e.g. 20261129T030000Z); "": the newest complete one
new_name = ""  # restore as a new guest of this name (new LVs, new UUID and MACs); "": the original names
define = False  # define the guest from the backup's definition
start = False  # start it and wait for a login prompt on its console (needs define)
boot_seconds = 300.0  # how long the guest may take to show a login prompt
allow_unsigned = False  # also restore a backup whose manifest no allowed signer signed (unsigned, or a bad signature)

# %%
from kvmops import notebook as nb
from kvmops.procedures import lv_backup_restore as proc
from kvmops.procedures.lv_backup_source import RestoreSource

host = nb.open_host(site, apply)
source = RestoreSource.open(host, repository, place)  # the repository, else the place's folder

# %% [markdown]
# ## Preconditions
#
# The backup (complete), room for the new LVs, and (with `define`) a bridge for each VLAN.
#
# *If this step fails:* an LV of that name exists: choose a `new_name`, or confirm the
# overwrite. "INCOMPLETE": that backup never finished; take another `backup`. "not trusted":
# its manifest is not signed by an allowed signer; take a signed `backup` (the message lists
# them), or check this one and set `allow_unsigned=True`.

# %%
with nb.step("Check the backup and the host", if_fails="read the message; nothing was changed"):
    ctx = source.read_ctx(guest, new_name, backup)
    chosen = proc.choose(ctx.place, guest, backup, allow_unsigned=allow_unsigned)
    print(proc.check(ctx, chosen, new_name, define))

# %% [markdown]
# ## Plan

# %%
restore = proc.procedure(ctx, chosen, new_name=new_name, define=define, start=start, boot_seconds=boot_seconds)
nb.show_staged(restore)

# %% [markdown]
# ## Restore
#
# Runs only with `apply=True`. Each disk is extracted by borg on this host (a repository) or
# decompressed on the place and streamed through kvmops (a folder) into its LV; the sha256 of the stream and of the LV (read on the host) must both be
# the manifest's.
#
# *If this step fails:* the new LVs stay tagged as an incomplete restore and are never
# started from; run again to stream into them again, or remove them (`lv-remove`).

# %%
with nb.step("Restore the disks", if_fails="read the message; run again to resume into the same LVs"):
    ran = source.run(restore, chosen, new_name, confirm, progress=nb.progress)
    nb.show_ran(host, restore, ran)

# %% [markdown]
# ## Verify

# %%
with nb.step("Verify the restore", if_fails="check `lvs -o lv_name,lv_tags` and `virsh list --all` on the host"):
    nb.verify_with(host, lambda: proc.verify(source.read_ctx(guest, new_name, chosen.stamp), chosen, new_name,
                                             define, start))
host.close()
source.close()
