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
# # Remove a guest
#
# Remove a guest for good: first its libvirt definition (`virsh undefine`; the domain XML
# file is kept as `<name>.xml.undefined`), then its disk LVs under the guide's removal rules
# (4.2.3): one exact `VG/LV` at a time, never `-y`/`--yes`/`-f`/`--force`, snapshots first.
#
# **When to use it:** a guest is decommissioned. To only stop it use `guest-lifecycle`;
# to keep the disk set `remove_disks=False`.
#
# **Preconditions (checked below):** the guest is shut off (shut it down with
# `guest-lifecycle` first). Two confirmations, both exact, both checked before anything
# changes: `confirm` = the guest's name for the undefine, and `confirm_disks` = the
# comma-separated list of LVs the plan shows (e.g.
# `rl_build/vminflux-20261120T0900Z,rl_build/vminflux`). The data is gone for good.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # the guest's name, to undefine it
guest = "influx"  # the guest to remove
remove_disks = True  # also remove the guest's disk LVs (and their snapshots) in the site's VG
confirm_disks = ""  # the LVs to remove, exactly as the plan lists them, comma-separated

# %%
from kvmops import notebook as nb
from kvmops.procedures import guest_remove as proc

host = nb.open_host(site, apply)

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* a running guest must be shut down first (`guest-lifecycle`,
# `action=shutdown`). An unknown guest: check the name with `inventory`.

# %%
with nb.step("Check preconditions", if_fails="shut the guest down first; check the name with inventory"):
    facts = nb.read(host, proc.wanted(host.site, guest))
    print(proc.check(facts, guest, remove_disks))

# %% [markdown]
# ## Plan
#
# The LV removals are computed as if the steps before them had run (snapshots first, so
# that the origin has none left); with `apply=True` each is planned again just before it runs.

# %%
remove = proc.procedure(facts, guest, remove_disks)
nb.show_procedure(remove)

# %% [markdown]
# ## Undefine, then remove the disks
#
# Every confirmation (the guest, each LV) is checked before the first change: a missing or
# wrong one refuses the whole run and nothing is changed. The disks are planned again from
# the host as it is once the guest is undefined.
#
# *If this step fails:* "cannot delete inactive domain with N snapshots": libvirt snapshots
# exist (the guide does not use them): list them with `virsh snapshot-list`. An LV that is
# open (mounted, kpartx-mapped) is refused: release it and run the runbook again; what was
# removed stays removed, the rest is planned again.

# %%
with nb.step("Remove the guest", if_fails="read the message; every confirmation is checked before the first change"):
    nb.run_procedure(host, remove, confirm, confirm_disks)

# %% [markdown]
# ## Verify

# %%
with nb.step("Verify the removal", if_fails="check `virsh list --all` and `lvs` on the host"):
    nb.verify(host, lambda now: proc.verify(now, facts, guest, remove_disks), proc.verify_wanted(host.site, guest))
host.close()
