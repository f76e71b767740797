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
from kvmops.images.grow import guest_grow_plan
from kvmops.procedures import guest_resize as proc
from kvmops.units import human, parse_size

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
# The LV phase from the host's facts; the partition and filesystem phases from the disk
# itself, mapped READ-ONLY for this (`kpartx -a -r`, undone right after), as they will run
# once the LV has its new size. On a site of recorded facts (the demo) the disk cannot be
# mapped: only the LV phase is shown.
#
# *If this step fails:* the disk holds no partition table or no Linux root the runbook can
# grow (xfs, ext2/3/4, btrfs): the message says which. Nothing was changed.

# %%
with nb.step("Plan the phases", if_fails="read the message above; nothing was changed"):
    grow_lv = proc.lv_phase(facts, guest, new_size)
    nb.show_procedure(grow_lv)
    if not offline:
        nb.show_plan(guest_grow_plan())
    elif host.site.replay:
        nb.note(f"SKIPPED: site {host.site.name} replays recorded outputs; the disk cannot be mapped there, so "
                f"the partition phase (`sfdisk -N` + `kpartx -u` on {proc.disk(facts, guest)}) and the "
                "filesystem phase (`xfs_growfs` or `resize2fs`) are not planned here.")
    else:
        with nb.locked(host, guest, "guest-resize (plan)", reading=True):
            seen = proc.look(host, facts, guest)
        print(f"root: {seen.root.partition.node} ({seen.root.fstype}), partition {human(seen.part_size)}, "
              f"filesystem {human(seen.fs_bytes) if seen.fs_bytes else 'of unknown size'}")
        for plan in proc.preview(seen, new_size):
            nb.show_plan(plan)

# %% [markdown]
# ## Grow the LV
#
# *If this step fails:* the VG is full: free space first. The LV keeps its size.

# %%
with nb.step("Grow the LV", if_fails="read the LVM message; the LV keeps its old size"):
    with nb.locked(host, guest, "guest-resize"):
        nb.run_procedure(host, grow_lv, confirm)

# %% [markdown]
# ## Grow the root partition, then the filesystem
#
# Each phase planned from the disk as it is now, then run; the disk is mapped read-write for
# this and unmapped again on every way out.
#
# *If this step fails:* a filesystem kvmops cannot grow is named in the message. The disk is
# unmapped again either way; run the runbook again (done phases are "already so"), or start
# the guest and grow inside it (`offline=False`).

# %%
with nb.step("Grow the root partition and filesystem", if_fails="run again, or grow inside the guest (offline=False)"):
    if host.apply and offline:
        with nb.locked(host, guest, "guest-resize"):
            for plan in proc.grow_root(host, nb.read(host), guest):
                print(f"done: {plan.title}" + "".join(f"; {n}" for n in plan.notes))
    elif host.apply:
        print("run the commands above inside the guest after its restart")
    else:
        print("plan only: nothing was changed; run with apply=True to execute it")

# %% [markdown]
# ## Verify
#
# The LV has its new size; read through a read-only mapping again: the partition reaches the
# end of the disk and the filesystem fills the partition.

# %%
with nb.step("Verify the sizes", if_fails="compare `lvs` and `df -h /` inside the guest"):
    if host.apply:
        grown = None
        if offline:
            with nb.locked(host, guest, "guest-resize (verify)", reading=True):
                grown = proc.look(host, nb.read(host), guest)
        nb.verify(host, lambda now: proc.verify(now, guest, new_size, grown))
        print(f"start the guest: guest-lifecycle guest={guest} action=start")
    else:
        print("plan only: nothing was changed, so nothing is verified")
host.close()
