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
# # Remove a guest LV
#
# Remove one logical volume under the guide's rules (4.2.3): always one exact `VG/LV`, never
# `-y`, `--yes`, `-f` or `--force`; kvmops answers lvremove's own prompt for this one LV only.
#
# **When to use it:** a leftover disk of a guest that was removed, or a snapshot that is no
# longer needed (removing a snapshot keeps its origin as it is now). To remove a whole guest
# use `guest-remove`, which undefines it first.
#
# **Preconditions (checked below):** the LV follows the guest naming convention (host LVs are
# never removed), no defined guest uses it, it is not open, and it has no snapshots. The data
# is gone for good: the removal runs only with `apply=True` and `confirm` equal to the LV.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # the LV to remove, exactly VG/LV (e.g. rl_build/vmold)
lv = "vmold"  # the LV (or snapshot LV) to remove, e.g. vmold

# %%
from kvmops import notebook as nb
from kvmops.procedures import lv as proc

host = nb.open_host(site, apply)
path = f"{host.site.vg}/{lv}"

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* a guest that still uses the LV must be removed first (`guest-remove`);
# snapshots must be merged (`lv-restore`) or removed first (this runbook, one by one).

# %%
with nb.step("Check preconditions", if_fails="remove the guest first (guest-remove) or its snapshots"):
    facts = nb.read(host)
    print(proc.check_remove(facts, lv))

# %% [markdown]
# ## Plan
#
# The removal is DESTRUCTIVE: it needs `confirm` equal to the LV.

# %%
remove = proc.remove(facts, lv)
nb.show_procedure(remove)

# %% [markdown]
# ## Remove
#
# Holds the lock of the LV's guest (`vmold` -> `old`; a snapshot: its origin's guest).
#
# *If this step fails:* "Logical volume ... in use" means it is open (mounted, kpartx-mapped):
# release it and run again. "locked by another run": wait for that run to end. Nothing else
# is touched.

# %%
with nb.step("Remove the LV", if_fails="release whatever holds the LV open, then run again"):
    nb.run_procedure(host, remove, confirm)

# %% [markdown]
# ## Verify

# %%
with nb.step("Verify the removal", if_fails="check with `lvs` on the host"):
    nb.verify(host, lambda now: proc.verify_removed(now, lv))
host.close()
