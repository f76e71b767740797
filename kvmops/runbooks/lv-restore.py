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
# not invalid (overflowed); the guest is shut off and its LV is not open. Because it is
# destructive, the merge runs only with `apply=True` and `confirm` equal to the origin,
# e.g. `rl_build/vminflux`.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("" = $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # the guest's LV to roll back, exactly VG/LV (e.g. rl_build/vminflux)
guest = "influx"  # the guest to roll back
snapshot = ""  # the snapshot LV to merge; "" = the newest snapshot of the guest's LV
interval = 10  # seconds between lvconvert's progress reports

# %%
from kvmops import notebook as nb
from kvmops.lvm import ops
from kvmops.units import human

host = nb.open_host(site, apply)
lv = host.site.guest_lv(guest)

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* a running guest must be shut down first (`guest-lifecycle` with
# `action=shutdown`). An invalid snapshot has overflowed: its data is lost and it cannot be
# merged; remove it with `lv-remove`. Nothing was changed.

# %%
with nb.step("Check preconditions", if_fails="shut the guest down first; list snapshots with the inventory runbook"):
    state = nb.lvm_state(host)
    nb.check(state.get(lv) is not None, f"guest {guest}: LV {host.site.vg}/{lv} does not exist")
    snaps = sorted(state.snapshots_of(lv), key=lambda s: s.name)
    nb.table([(s.name, human(s.size), f"{s.data_percent or 0:.2f}%", "INVALID" if s.invalid else "ok")
              for s in snaps], ["snapshot", "size", "used", "state"])
    nb.check(snaps, f"guest {guest}: {host.site.vg}/{lv} has no snapshot to roll back to")
    chosen = snapshot or snaps[-1].name
    nb.check(chosen in {s.name for s in snaps},
             f"{chosen} is not a snapshot of {host.site.vg}/{lv} (snapshots: {', '.join(s.name for s in snaps)})")
    busy = nb.busy(host)
    nb.check(f"{host.site.vg}/{lv}" not in busy,
             f"guest {guest} is running: shut it down first (guest-lifecycle action=shutdown)")
    print(f"rolling {host.site.vg}/{lv} back to {chosen}")

# %% [markdown]
# ## Plan
#
# The merge step is DESTRUCTIVE: it needs `confirm` equal to the origin.

# %%
plan = ops.merge(host.site, state, chosen, busy=busy, interval=interval)
nb.show_plan(plan)

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
    with nb.locked(host, guest, "lv-restore"):
        nb.apply_plan(host, plan, confirm)

# %% [markdown]
# ## Verify
#
# The snapshot is gone and the origin is no longer merging. Start the guest afterwards
# (`guest-lifecycle` with `action=start`).

# %%
with nb.step("Verify the rollback", if_fails="run `lvs -a` on the host and wait for the merge to end"):
    if host.apply and not plan.empty:
        after = nb.lvm_state(host)
        origin = after.get(lv)
        nb.check(after.get(chosen) is None, f"{chosen} still exists: the merge has not finished")
        nb.check(origin is not None and not origin.merging, f"{host.site.vg}/{lv} is still merging")
        print(f"ok: {host.site.vg}/{lv} holds the state of {chosen}; start the guest when ready")
    else:
        print(f"plan only: would merge {host.site.vg}/{chosen} into {host.site.vg}/{lv}")
host.close()
