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
# # Create a guest LV
#
# Create the logical volume for a guest's disk in the site's VG (guide 4.2.2):
# `lvcreate --name vmtest1 --size 10g rl_build`. The LV is named after the guest with the
# site's prefix (`vm`), so that it is clear what it is for and host LVs stay apart.
#
# **When to use it:** before copying an image for a new guest by hand, or for a data disk.
# `guest-create` does this as its first step.
#
# **Preconditions (checked below):** the VG has the space. Re-running converges: an LV that
# exists with at least the size is a no-op; a smaller one is an error (use `lv-resize`).

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # not needed: creating an LV destroys nothing
guest = "test2"  # the guest the LV is for
lv = ""  # the LV name; "": the site's prefix + guest (e.g. vmtest2)
size = "10g"  # the LV's size (base-2: b s k m g t)

# %%
from kvmops import notebook as nb
from kvmops.procedures import lv as proc
from kvmops.units import parse_size

host = nb.open_host(site, apply)
name = lv or host.site.guest_lv(guest)
want = parse_size(size)

# %% [markdown]
# ## Preconditions and plan
#
# *If this step fails:* "needs ... but VG has only ... free": choose a smaller size. "exists
# with ..., smaller than": the LV is there already; resize it with `lv-resize`.

# %%
with nb.step("Check and plan", if_fails="choose another size or name"):
    facts = nb.read(host)
    create = proc.create(facts, name, want)
    nb.show_procedure(create)

# %% [markdown]
# ## Create the LV
#
# Runs only with `apply=True`, holding the guest's lock.
#
# *If this step fails:* read LVM's message; nothing was created.

# %%
with nb.step("Create the LV", if_fails="read the LVM message above; nothing was created"):
    nb.run_procedure(host, create, confirm)

# %% [markdown]
# ## Verify
#
# LVM lists the LV with at least the size asked for.

# %%
with nb.step("Verify the LV", if_fails="check with `lvs` on the host"):
    nb.verify(host, lambda now: proc.verify_created(now, name, want))
host.close()
