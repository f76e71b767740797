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
# # Snapshot a guest's disk
#
# Take an LVM snapshot of a guest's system disk, named after the UTC time
# (`vmtest1-20241006T1518Z`), so that the disk can be rolled back later (guide 4.2.5).
#
# **When to use it:** before an upgrade, a risky configuration change or an experiment inside
# the guest. Roll back with the runbook `lv-restore`; watch the snapshot's fill % with
# `inventory` or `snapshot-filling-up`: a snapshot that overflows is lost.
#
# **Preconditions (checked below):** the guest's LV exists in the site's VG, the guest is
# shut off (LVM only sees the on-disk state of a running guest), and the VG has room for
# the snapshot.
#
# **Parameters:** `guest` (the libvirt name; its LV is the site's prefix + name, e.g.
# `test1` -> `vmtest1`), `size` (how much change the snapshot can hold; empty = the site's
# default). Nothing is destroyed, so `confirm` is not needed.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # not needed: a snapshot destroys nothing
guest = "influx"  # the guest whose system disk to snapshot
size = ""  # snapshot size, e.g. 5g (base-2); "": the site's snapshot_size

# %%
from datetime import UTC, datetime

from kvmops import notebook as nb
from kvmops.procedures import lv as proc
from kvmops.units import size_or

host = nb.open_host(site, apply)
when = datetime.now(UTC)  # the snapshot's name embeds this time

# %% [markdown]
# ## Preconditions
#
# The guest's LV must exist and be in use by nothing: not the disk of a running guest, not
# mounted or mapped (LVM's open flag).
#
# *If this step fails:* a missing LV means a wrong guest name (see `inventory`). A running
# guest must be shut down first (`guest-lifecycle` with `action=shutdown`), then run this
# runbook again, then start the guest.

# %%
with nb.step("Check preconditions", if_fails="check the guest name with the inventory runbook; "
             "shut a running guest down first (guest-lifecycle action=shutdown)"):
    facts = nb.read(host)
    print(proc.check_snapshot(facts, guest))

# %% [markdown]
# ## Plan
#
# The exact commands; nothing has run yet.

# %%
snapshot = proc.snapshot(facts, guest, size_or(size, None), when)
nb.show_procedure(snapshot)

# %% [markdown]
# ## Take the snapshot
#
# Runs only with `apply=True`, holding the guest's lock (a second run on the same guest is
# refused meanwhile). The plan is made again from the host as it is at that moment.
#
# *If this step fails:* `Insufficient free space` means the VG is full: choose a smaller
# `size`. `Can't create snapshot without using device-mapper` means this machine has no
# device-mapper (the CI machines): use a real host or the lab VM. Nothing was changed.

# %%
with nb.step("Take the snapshot", if_fails="read the LVM message above; nothing was changed"):
    nb.run_procedure(host, snapshot, confirm)

# %% [markdown]
# ## Verify
#
# LVM lists the snapshot, of the guest's LV, valid.

# %%
with nb.step("Verify the snapshot", if_fails="list the snapshots with the inventory runbook"):
    nb.verify(host, lambda now: proc.verify_snapshot(now, guest, when))
host.close()
