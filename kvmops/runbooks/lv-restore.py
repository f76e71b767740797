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
# # Roll a guest back to a snapshot (merge)
#
# Restore a guest's disk to the state of one of its LVM snapshots by merging the snapshot
# into its origin with `lvconvert --mergesnapshot` (guide 4.2.5). **Incident runbook:** an
# upgrade or change inside the guest went wrong and the guest must go back to the state of
# the snapshot.
#
# **The merge removes the snapshot** and everything written to the disk since the snapshot
# was taken is lost. Take a new snapshot afterwards if you want to keep that state again.
#
# **Preconditions (checked below):** the snapshot exists, belongs to the guest's LV and is
# not invalid (overflowed); the guest is shut off and its LV is not open. Without `snapshot`
# the newest snapshot by LVM's creation time is chosen (not by name). Because it is
# destructive, the merge runs only with `apply=True` and `confirm` equal to the snapshot
# being merged, e.g. `rl_build/vminflux-20241006T1518Z`: the plan names it and its time.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # the snapshot to merge, exactly VG/LV (e.g. rl_build/vminflux-20241006T1518Z)
guest = "influx"  # the guest to roll back
snapshot = ""  # the snapshot LV to merge; "": the newest by creation time
interval = 10  # seconds between lvconvert's progress reports

# %%
from kvmops import notebook as nb
from kvmops.procedures import lv as proc

host = nb.open_host(site, apply)

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* a running guest must be shut down first (`guest-lifecycle` with
# `action=shutdown`). An invalid snapshot has overflowed: its data is lost and it cannot be
# merged; remove it with `lv-remove`. Nothing was changed.

# %%
with nb.step("Check preconditions", if_fails="shut the guest down first; list snapshots with the inventory runbook"):
    facts = nb.read(host)
    nb.table(*proc.snapshot_table(facts, guest))
    chosen = proc.choose_snapshot(facts, guest, snapshot)
    print(proc.check_restore(facts, guest, chosen))

# %% [markdown]
# ## Plan
#
# The merge step is DESTRUCTIVE: it needs `confirm` equal to the snapshot it merges.

# %%
restore = proc.restore(facts, chosen.name, interval)
nb.show_procedure(restore)

# %% [markdown]
# ## Merge the snapshot
#
# `lvconvert` reports progress every `interval` seconds and may run on after "Merged:
# 100.00%"; the step waits until the snapshot is really gone.
#
# *If this step fails:* "Delaying merge since origin is open" means something holds the LV
# (a mount, a kpartx mapping, the guest): release it; the merge then completes on the next
# activation (`lvchange -an` and `-ay` of the origin). Do **not** start the guest before the
# merge has finished.

# %%
with nb.step("Merge the snapshot", if_fails="do not start the guest; check `lvs -a` until the merge is done"):
    nb.run_procedure(host, restore, confirm)

# %% [markdown]
# ## Verify
#
# The snapshot is gone and the origin is no longer merging. Start the guest afterwards
# (`guest-lifecycle` with `action=start`).

# %%
with nb.step("Verify the rollback", if_fails="run `lvs -a` on the host and wait for the merge to end"):
    nb.verify(host, lambda now: proc.verify_restored(now, guest, chosen.name))
host.close()
