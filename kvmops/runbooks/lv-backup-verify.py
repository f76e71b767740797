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
# # Prove a backup restores: boot it
#
# A checksum proves that the bytes came back, not that the guest comes back. This runbook
# restores a backup of a guest (the newest signed one, or the one named) into new LVs on the
# host you name, defines it there under a scratch name (`<guest>-verify`) with **no network**
# (every interface of its definition is left out: the copy reaches nothing and nothing
# reaches it, so it never answers in place of the real guest), starts it and waits for the
# login prompt on its console: the one boot verdict kvmops uses everywhere.
#
# **On every path out** the scratch guest is forced off and undefined and its LVs are
# removed: those stages run also after a failure. The LVs are removed without a
# confirmation because this very run made them (the safety gate allows nothing else); the
# run refuses to start when a guest or an LV of the scratch name exists already.
#
# **The verdict** is printed and kept in the journal; for a backup in a BorgBackup
# repository it is also kept beside the backup, as one more archive
# `<guest>-<stamp>.verified-<time>` (an append-only repository takes it).
#
# **Parameters:** `guest`, `repository` (a BorgBackup repository; "": the site's `[backup]
# repository`), `place` (without a repository: the backup place as for `lv-backup`),
# `backup` (a time stamp; "": the newest signed one), `boot_seconds`.

# %% tags=["parameters"]
site = ""  # the host to restore on: site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # none needed: the run confirms only its own scratch guest, after checking that the name was free
guest = "influx"  # the guest whose backup to prove
repository = ""  # a BorgBackup repository ("": the site's [backup] repository; none: the place below)
place = "demo2:/srv/kvmops-backups"  # without a repository, where the backups are: /dir, user@host:/dir or SITE:/dir
backup = ""  # the backup's time stamp, e.g. 20261128T020000Z ("": the newest signed one)
boot_seconds = 300.0  # how long the scratch guest may take to show its login prompt

# %%
from kvmops import notebook as nb
from kvmops.procedures import lv_backup_restore as rs
from kvmops.procedures import lv_backup_verify as vf
from kvmops.runbook.verdict_data import keep_verdict

host = nb.open_host(site, apply)
proof = vf.Proof.of(host, guest, repository, place)  # the repository, else the place's folder

# %% [markdown]
# ## Preconditions
#
# The backup (complete, its manifest signed by an allowed signer), room for its LVs on the
# host, and a free scratch name.
#
# *If this step fails:* read the message; nothing was changed. A scratch guest or LV left by
# hand: remove it (guest-remove, lv-remove) and run again.

# %%
with nb.step("Check the backup and the host", if_fails="read the message; nothing was changed"):
    ctx = proof.read_ctx(backup)
    chosen = rs.choose(ctx.place, guest, backup)
    print(vf.check(ctx, chosen, proof.scratch))

# %% [markdown]
# ## Plan
#
# The restore under the scratch name, its boot, then the cleanup stages.

# %%
verify = vf.procedure(ctx, chosen, scratch=proof.scratch, boot_seconds=boot_seconds)
nb.show_staged(verify)

# %% [markdown]
# ## Restore, boot, clean up
#
# Runs only with `apply=True`; the executor holds the scratch guest's lock on the host. A
# failure (a wrong checksum, no login prompt) is the verdict: the cleanup ran, the reason is
# printed.

# %%
with nb.step("Restore and boot the backup", if_fails="read the verdict; the scratch guest and LVs were removed"):
    proved = proof.run(verify, chosen, progress=nb.progress)
    nb.show_ran(host, verify, proved.ran)

# %% [markdown]
# ## The verdict
#
# Printed here (the journal keeps it, and the notebook as data: the manual's host, guest and
# fleet pages show each guest's last verified restore and which backup it proved) and, for a
# backup in a repository, kept beside it.

# %%
with nb.step("Record the verdict", if_fails="the verdict is above; the repository did not take it"):
    keep_verdict(host.apply, proof.verdict(chosen, proved.verdict))
    nb.show_lines(proof.record(chosen, proved.verdict, progress=nb.progress))
    nb.verify_with(host, lambda: proved.verdict)
host.close()
proof.close()
