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
# # Resize a guest's disk and grow its root filesystem
#
# Give a guest a bigger system disk: grow its LV (`lvresize`, guide 4.2.4), then grow the root
# partition (`growpart`) and the filesystem (`xfs_growfs` / `resize2fs`) to fill it (guide
# "Increase root partition"). Done offline on the host while the guest is shut off: the LV
# is mapped with kpartx, the root found and grown, and everything unmapped again.
#
# **When to use it:** the guest's root filesystem is filling up. Shrinking is not offered
# here (use `lv-resize` with care). If you prefer to grow inside the running guest, set
# `offline=False`: the runbook then prints the commands to run in the guest after a restart.
#
# **Preconditions (checked below):** the guest exists and is shut off (growing the LV of a
# running guest works, but the offline grow needs the disk unused: shut it down with
# `guest-lifecycle`), the new size is larger, and the VG has the space.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # not needed: growing destroys nothing
guest = "influx"  # the guest whose system disk to grow
size = "30g"  # the new size of its LV (base-2), larger than now
offline = True  # grow partition and filesystem on the host now; False: print the in-guest commands

# %%
from kvmops import notebook as nb
from kvmops.guests import lifecycle
from kvmops.images.grow import grow_offline, guest_grow_plan
from kvmops.lvm import ops
from kvmops.units import human, parse_size

host = nb.open_host(site, apply)
lv = host.site.guest_lv(guest)
path = f"{host.site.vg}/{lv}"
new_size = parse_size(size)

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* shut the guest down first (`guest-lifecycle`, `action=shutdown`);
# a size that is not larger: this runbook only grows.

# %%
with nb.step("Check preconditions", if_fails="shut the guest down; give a larger size"):
    facts = nb.read(host)
    info = lifecycle.need_domain(facts, guest)
    have = facts.lvm.need(lv)
    nb.check(new_size > have.size, f"{path} is {human(have.size)} already: give a size above that (this runbook only grows)")
    nb.check(not offline or not info.active,
             f"guest {guest} is {info.state}: shut it down first, or set offline=False to grow inside the guest")
    print(f"{path}: {human(have.size)} -> {human(new_size)}; guest {guest} is {info.state}")

# %% [markdown]
# ## Plan
#
# The partition and filesystem steps depend on what is inside the disk after the LV has
# grown: with `apply=True` they are planned from the real disk right after the LV step.

# %%
plan = ops.resize(facts, lv, new_size)
nb.show_plan(plan)
if offline:
    nb.note(f"Then, on the host: map {path} (kpartx), find the root filesystem, `growpart` its partition and "
            "grow the filesystem (xfs_growfs or resize2fs), unmap.")
else:
    nb.show_plan(guest_grow_plan())

# %% [markdown]
# ## Grow the LV
#
# *If this step fails:* the VG is full: free space first. The LV keeps its size.

# %%
with nb.step("Grow the LV", if_fails="read the LVM message; the LV keeps its old size"):
    with nb.locked(host, guest, "guest-resize"):
        nb.execute(host, plan, confirm)

# %% [markdown]
# ## Grow the root partition and filesystem
#
# *If this step fails:* "NOCHANGE" from growpart means the partition fills the disk already;
# a filesystem kvmops cannot grow is named in the message. The disk is unmapped again either
# way; the guest can be started (its filesystem is just not larger yet).

# %%
with nb.step("Grow the root partition and filesystem", if_fails="start the guest and grow inside it (offline=False)"):
    if host.apply and offline:
        with nb.locked(host, guest, "guest-resize"):
            grown = grow_offline(host, nb.read(host), lv=path, progress=print)
        nb.show_plan(grown)
    else:
        print("plan only" if not host.apply else "run the commands above inside the guest after its restart")

# %% [markdown]
# ## Verify

# %%
with nb.step("Verify the sizes", if_fails="compare `lvs` and `df -h /` inside the guest"):
    if host.apply:
        now = nb.read(host).lvm.need(lv)
        nb.check(now.size == new_size, f"{now.path} is {human(now.size)}, not {human(new_size)}")
        print(f"ok: {now.path} is {human(now.size)}; start the guest (guest-lifecycle action=start)")
    else:
        print(f"plan only: {path} stays {human(have.size)}")
host.close()
