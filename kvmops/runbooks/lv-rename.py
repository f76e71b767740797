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
# # Rename a guest's LV
#
# The guide's `lvrename rl_build OLD NEW` (4.2.4), done so that the guest still starts:
# a guest's definition names its disk by path (`/dev/rl_build/vmtest1`), so renaming the LV
# alone leaves the guest pointing at a disk that is gone. This runbook renames the LV and
# then updates every guest that names it: libvirt's definition (defined again with the same
# UUID; MACs and PCI addresses stay) and the kept copy `<xml_dir>/<guest>.xml`.
#
# **When to use it:** a guest's disk should carry another name (a renamed guest, a disk
# kept aside as `vmtest1-old` before a fresh one takes its name).
#
# **Preconditions (checked below):** the LV exists and follows the guest naming convention
# (host LVs are never renamed), the new name is free, and the LV is in use by nothing: every
# guest that names it is shut off (shut it down with `guest-lifecycle` first), and it is not
# mounted or mapped. Its snapshots keep their names.
#
# **Confirmation:** changing a guest's definition needs `confirm` = the guest's name (several
# comma-separated); every confirmation is checked before the first change.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # the name of each guest whose definition changes, comma-separated
lv = "vminflux"  # the LV to rename (in the site's VG)
new_name = "vminfluxdb"  # its new name (also with the site's guest prefix)

# %%
from kvmops import notebook as nb
from kvmops.procedures import lv_rename as proc

host = nb.open_host(site, apply)

# %% [markdown]
# ## Preconditions
#
# First who names the LV, then their kept XML files.
#
# *If this step fails:* a guest that uses the LV runs: shut it down first (`guest-lifecycle`
# with `action=shutdown`); the LV is open (mounted, mapped): release it; the new name is
# taken or not a guest LV name: pick another. Nothing was changed.

# %%
with nb.step("Check preconditions", if_fails="shut the guest down first; pick a free new name"):
    old, new = proc.names_of(host.site, lv, new_name)
    facts = nb.read(host)
    facts = nb.read(host, proc.wanted(facts, old, new))
    print(proc.check(facts, old, new))
    users = proc.users(facts, old, new)
    before = proc.uuids(facts, users)

# %% [markdown]
# ## Plan
#
# The definitions are planned as if the LV were renamed already; with `apply=True` each part
# is planned again from the host as it is just before it runs.

# %%
rename = proc.procedure(facts, old, new)
nb.show_procedure(rename)

# %% [markdown]
# ## Rename, then update the definitions
#
# *If this step fails:* the rename stays done; running again finds the LV renamed and only
# updates what still names the old LV. libvirt refusing the definition names what is wrong.

# %%
with nb.step("Rename the LV", if_fails="read the message; running again continues where it stopped"):
    nb.run_procedure(host, rename, confirm)

# %% [markdown]
# ## Verify
#
# LVM shows the new name only; each guest's definition, in libvirt and in its kept file,
# names the new LV and has kept its UUID. Start the guest (`guest-lifecycle action=start`).

# %%
with nb.step("Verify the rename", if_fails="compare `virsh dumpxml GUEST` with `lvs` on the host"):
    nb.verify(host, lambda now: proc.verify(now, old, new, before), proc.verify_wanted(host.site, users))
host.close()
