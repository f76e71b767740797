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
# Give a guest a bigger system disk, offline on the host while the guest is shut off, in
# three phases, all shown before anything runs:
#
# 1. **The LV** grows (`lvresize`, guide 4.2.4).
# 2. **The root partition** grows into the new room (guide "Increase root partition"). The
#    guide runs `growpart` inside the guest; here, on the host, the LV's partitions are mapped
#    with kpartx and the partition is grown with `sfdisk -N N /dev/mapper/VG-LV` (input
#    `, +`: to the end), then `kpartx -u` tells the mapping its new size. Not `growpart`:
#    on a kpartx-mapped LV it resolves the disk to `/dev/dm-N` and then looks for the
#    partition `/dev/dm-N1`, which does not exist (kpartx names it `/dev/mapper/VG-LVp1`), so it
#    fails ("failed to get start and end"). sfdisk edits the table itself and also moves a
#    GPT's backup header to the new end of the disk.
# 3. **The filesystem** grows to fill the partition: `xfs_growfs` (mounted read-write for
#    that command) or `e2fsck -f -p` + `resize2fs` (unmounted).
#
# Phase 2 is planned from the disk's partition table, phase 3 from the sizes phase 2 leaves
# (the partition's new size, the filesystem's size); each is planned again from the disk as
# it is just before it runs, so a re-run after a failure only does what is left. The
# mapping is undone on every path out.
#
# **When to use it:** the guest's root filesystem is filling up. Shrinking is not offered
# here (use `lv-resize` with care). If you prefer to grow inside the running guest, set
# `offline=False`: the runbook then grows the LV and prints the commands to run in the guest
# after a restart (`growpart` works there: the guest sees a plain `/dev/vda`).
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
from kvmops.procedures import guest_resize as proc
from kvmops.units import parse_size

host = nb.open_host(site, apply)
new_size = parse_size(size)

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* shut the guest down first (`guest-lifecycle`, `action=shutdown`);
# a size below the LV's: this runbook only grows (the same size: a re-run after the LV grew).

# %%
with nb.step("Check preconditions", if_fails="shut the guest down; give a larger size"):
    facts = nb.read(host)
    print(proc.check(facts, guest, new_size, offline))

# %% [markdown]
# ## Plan
#
# One procedure: the LV phase from the host's facts; the partition and filesystem phases
# from the disk itself, mapped READ-ONLY for this (`kpartx -a -r`, undone right after, the
# guest's lock held meanwhile), as they will run once the LV has its new size. Its
# confirmations are all checked before the first change. With `offline=False` the plan's
# notes list the commands to run inside the guest instead. On a site of recorded facts (the
# demo) the disk cannot be mapped: only the LV phase is planned, and a note says so.
#
# *If this step fails:* the disk holds no partition table or no Linux root the runbook can
# grow (xfs, ext2/3/4, btrfs): the message says which. Nothing was changed.

# %%
with nb.step("Plan the phases", if_fails="read the message above; nothing was changed"):
    resize = proc.procedure(host, facts, guest, new_size, offline)
    nb.show_procedure(resize)

# %% [markdown]
# ## Grow the LV, then the root partition, then the filesystem
#
# Runs only with `apply=True`; the executor holds the guest's lock throughout. Each phase is
# planned again from the host (and the disk) as it is just before it runs; for the partition
# and the filesystem the disk is mapped read-write and unmapped again on every way out.
#
# *If this step fails:* the VG is full (free space first: the LV keeps its size), or a
# filesystem kvmops cannot grow is named in the message. The disk is unmapped again either
# way; run the runbook again (done phases are "already so"), or start the guest and grow
# inside it (`offline=False`).

# %%
with nb.step("Grow the disk", if_fails="run again, or grow inside the guest (offline=False)"):
    nb.run_procedure(host, resize, confirm)

# %% [markdown]
# ## Verify
#
# The LV has its new size; read through a read-only mapping again: the partition reaches the
# end of the disk and the filesystem fills the partition. Then start the guest
# (`guest-lifecycle action=start`); with `offline=False`, run the commands of the plan's
# notes inside it.

# %%
with nb.step("Verify the sizes", if_fails="compare `lvs` and `df -h /` inside the guest"):
    nb.verify_with(host, lambda: proc.verify(host, guest, new_size, offline))
host.close()
