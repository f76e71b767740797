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
# `guest-lifecycle` first). Two confirmations, both exact: `confirm` = the guest's name for
# the undefine, and `confirm_disks` = the comma-separated list of LVs the plan shows, in
# that order (e.g. `rl_build/vminflux-20261120T0900Z,rl_build/vminflux`). The data is gone
# for good.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("" = $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # the guest's name, to undefine it
guest = "influx"  # the guest to remove
remove_disks = True  # also remove the guest's disk LVs (and their snapshots) in the site's VG
confirm_disks = ""  # the LVs to remove, exactly as the plan lists them, comma-separated

# %%
from kvmops import notebook as nb
from kvmops.guests import lifecycle
from kvmops.guests.inventory import read_inventory
from kvmops.lvm import ops
from kvmops.lvm.state import LvmState

host = nb.open_host(site, apply)

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* a running guest must be shut down first (`guest-lifecycle`,
# `action=shutdown`). An unknown guest: check the name with `inventory`.

# %%
with nb.step("Check preconditions", if_fails="shut the guest down first; check the name with inventory"):
    inventory = read_inventory(host)
    row = inventory.guest(guest)
    nb.check(row is not None, f"guest {guest} is not defined on {host.name} (see the inventory runbook)")
    nb.check(not row.active, f"guest {guest} is {row.state}: shut it down first (guest-lifecycle action=shutdown)")
    disks = [d.lv for d in row.disks if d.lv is not None] if remove_disks else []
    order = [s for d in disks for s in nb.lvm_state(host).snapshots_of(d.name)] + disks
    targets = ",".join(lv.path for lv in order)
    print(f"guest {guest}: {row.state}; disks to remove: {targets or 'none'}")

# %% [markdown]
# ## Plan
#
# The LV removals are computed as if the steps before them had run (snapshots first, so
# that the origin has none left); with `apply=True` each is planned again just before it runs.

# %%
undefine = lifecycle.undefine(host, guest)
state = nb.lvm_state(host)
removals = []
for lv in order:
    removals.append(ops.remove(host.site, state, lv.name))
    state = LvmState(state.vg, tuple(x for x in state.lvs if x.name != lv.name))
nb.show_plan(undefine)
for plan in removals:
    nb.show_plan(plan)
if order:
    print(f"to remove the disks set confirm_disks={targets!r}")

# %% [markdown]
# ## Undefine
#
# *If this step fails:* "cannot delete inactive domain with N snapshots": libvirt snapshots
# exist (the guide does not use them): list them with `virsh snapshot-list`.

# %%
with nb.step("Undefine the guest", if_fails="read libvirt's message; the disks are untouched"):
    with nb.locked(host, guest, "guest-remove"):
        nb.apply_plan(host, undefine, confirm)

# %% [markdown]
# ## Remove the disks
#
# *If this step fails:* an LV that is open (mounted, kpartx-mapped) is refused: release it
# and run the runbook again; what was removed stays removed, the rest is planned again.

# %%
with nb.step("Remove the disk LVs", if_fails="release whatever holds the LV, then run again"):
    if order and host.apply:
        nb.check(confirm_disks == targets, f"confirm_disks must be exactly {targets!r}; nothing was removed")
        with nb.locked(host, guest, "guest-remove"):
            for lv in order:
                nb.apply_plan(host, ops.remove(host.site, nb.lvm_state(host), lv.name, busy=nb.busy(host)),
                              lv.path)
    else:
        for plan in removals:
            nb.apply_plan(host, plan, "")

# %% [markdown]
# ## Verify

# %%
with nb.step("Verify the removal", if_fails="check `virsh list --all` and `lvs` on the host"):
    if host.apply:
        nb.check(not host.virt.exists(guest), f"guest {guest} is still defined")
        left = [lv.path for lv in order if nb.lvm_state(host).get(lv.name) is not None]
        nb.check(not left, f"LVs still there: {', '.join(left)}")
        print(f"ok: guest {guest} and its disks are gone")
    else:
        print(f"plan only: guest {guest} stays")
host.close()
