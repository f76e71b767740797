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
# # Resize a guest's LV
#
# Grow (or, with care, shrink) a guest's logical volume with `lvresize` (guide 4.2.4). Also
# works on a snapshot LV that is filling up (see `snapshot-filling-up`).
#
# **When to use it:** a guest needs a bigger disk. Growing the LV alone does not grow the
# partition and filesystem inside: use `guest-resize` for the whole job, or grow them inside
# the guest afterwards (`growpart /dev/vda 1`, `xfs_growfs /`).
#
# **Preconditions (checked below):** the LV exists and follows the guest naming convention
# (host LVs such as `root` are never touched); growing needs the space in the VG. Shrinking
# cuts data off the end of the disk: it is refused on a running guest and needs `confirm`
# equal to the LV (`rl_build/vminflux`); shrink the filesystem and partition first.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # only for shrinking: the LV exactly as VG/LV (e.g. rl_build/vminflux)
guest = "influx"  # the guest whose system LV to resize
lv = ""  # another LV of the guest instead (a data disk or a snapshot); "": the system LV
size = "30g"  # the new size (base-2: b s k m g t), e.g. 30g

# %%
from kvmops import notebook as nb
from kvmops.procedures import lv as proc
from kvmops.units import parse_size

host = nb.open_host(site, apply)
name = lv or host.site.guest_lv(guest)
new_size = parse_size(size)

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* check the LV's name with the `inventory` runbook.

# %%
with nb.step("Check preconditions", if_fails="check the LV name with the inventory runbook"):
    facts = nb.read(host)
    print(proc.check_resize(facts, name, new_size))

# %% [markdown]
# ## Plan

# %%
resize = proc.resize(facts, name, new_size)
nb.show_procedure(resize)

# %% [markdown]
# ## Resize
#
# *If this step fails:* `Insufficient free space` means the VG is full. Nothing was changed
# when lvresize reports an error.

# %%
with nb.step("Resize the LV", if_fails="read the LVM message above; the LV keeps its old size"):
    nb.run_procedure(host, resize, confirm)

# %% [markdown]
# ## Verify

# %%
with nb.step("Verify the size", if_fails="compare with `lvs` on the host"):
    nb.verify(host, lambda now: proc.verify_resized(now, name, new_size))
host.close()
