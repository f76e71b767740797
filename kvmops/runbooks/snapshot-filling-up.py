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
# # A snapshot is filling up
#
# **Incident runbook.** An LVM snapshot holds the blocks of its origin that changed since it
# was taken; when it is 100% full it becomes INVALID and its data is lost (guide 4.2.4/4.2.5).
# This runbook reports the fill % of every guest snapshot and grows those at or above a
# threshold with `lvresize`.
#
# **When to use it:** a monitoring alert, or before a long-running change in a guest that
# has a snapshot. Run it again (or regularly) until the snapshot is merged or removed.
#
# **Preconditions (checked below):** the VG has the space for each extension. An already
# invalid snapshot cannot be saved: the plan says so (remove it with `lv-remove`).

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # not needed: growing a snapshot destroys nothing
threshold = 0.0  # grow snapshots at or above this fill %; 0: the site's snapshot_extend_at
by = ""  # how much to add to each, e.g. 2g; "": the site's snapshot_extend_by

# %%
from kvmops import notebook as nb
from kvmops.procedures import lv as proc
from kvmops.units import size_or

host = nb.open_host(site, apply)
limit = proc.fill_threshold(host.site, threshold)
grow = size_or(by, host.site.snapshot_extend_by)

# %% [markdown]
# ## Fill report
#
# Every snapshot of a guest LV, fullest first. FILLING UP: at or above the threshold, extended
# below; INVALID: it overflowed, its data is lost (remove it with `lv-remove`).

# %%
with nb.step("Report snapshot fill", if_fails="check that the site's VG is right (site file)"):
    facts = nb.read(host)
    nb.table(*proc.fill_table(facts, limit))

# %% [markdown]
# ## Plan

# %%
extend = proc.extend(facts, limit, grow)
nb.show_procedure(extend)

# %% [markdown]
# ## Extend
#
# *If this step fails:* the VG has no space left: free some (remove an old snapshot or an
# unused LV) or merge/remove this snapshot before it overflows.

# %%
with nb.step("Extend the snapshots", if_fails="free space in the VG, or merge/remove the snapshot soon"):
    nb.run_procedure(host, extend, confirm)

# %% [markdown]
# ## Verify
#
# Each extended snapshot is below the threshold again.

# %%
with nb.step("Verify the fill", if_fails="run this runbook again with a larger `by`"):
    nb.verify(host, lambda now: proc.verify_extended(now, limit))
host.close()
