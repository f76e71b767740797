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
# # Move a guest to another host
#
# A cold move without shared storage: the guest is shut down, each of its disk LVs is copied
# over SSH into an LV of the same size on the target host, and the guest is defined and
# started there. libvirt's own migration needs shared storage; this is the guide's way of
# doing it by hand (`dd` through `ssh`), with every step checked.
#
# **When to use it:** a host is to be emptied (maintenance, replacement), or a guest needs
# more room than its host has (see `kvmops fleet fits`). The guest is down for the copy: about
# its disk size divided by the network's speed (10 GiB over 1 Gbit/s: ~2 minutes).
#
# **What happens, in order:** the target is checked (VG space, a bridge for each of the
# guest's VLANs, no guest or LV of those names), the guest is shut down, each disk gets an LVM
# snapshot for the copy's duration, the snapshot is streamed through kvmops into a new LV on
# the target and the sha256 of both ends is compared, the guest is defined on the target from
# its libvirt definition (disk paths to the target's VG, bridges mapped by VLAN; UUID and MAC
# addresses kept, so DHCP reservations still match), started, and its boot verified by a
# login prompt on its console. **Only then** it is undefined on the source (`confirm`); its
# XML is kept there as `.undefined`, and its LVs stay until you remove them
# (`remove_source_disks` with `confirm_disks`).
#
# **If anything fails:** the source guest keeps its definition and its disks; the snapshots
# are removed on every path out, and a guest that ran before is started again (unless its copy
# already ran on the target: that one is newer). Run the runbook again: it recognises its own
# work by LVM tags on the target's LVs (an incomplete copy is streamed again into the same LV,
# never a second one beside it; a complete one is checked again).
#
# **Parameters:** `guest`, `target` (the target host: a shipped site name or a site file;
# `site` is the source), `confirm` = the guest's name (checked before the first change),
# `remove_source_disks` with `confirm_disks` = the LVs the plan lists.

# %% tags=["parameters"]
site = ""  # the source host: site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # the guest's name: to undefine it on the source once it has booted on the target
guest = "test1"  # the guest to move
target = "demo2"  # the target host: site file or shipped site name (demo2: the demo's peer)
remove_source_disks = False  # also remove the source LVs at the end (needs confirm_disks)
confirm_disks = ""  # the source LVs to remove, exactly as the plan lists them, comma-separated
boot_seconds = 300.0  # how long the guest may take to show a login prompt on the target
shutdown_timeout = 120.0  # how long the guest may take to power off on the source

# %%
from datetime import UTC, datetime

from kvmops import notebook as nb
from kvmops.procedures import guest_move as proc

host = nb.open_host(site, apply)
peer = nb.open_host(target, apply)
when = datetime.now(UTC)  # the snapshots' names embed this time

# %% [markdown]
# ## Preconditions
#
# Both hosts are read: the guest and its disks on the source; VG space, bridges, guests and
# LVs on the target. A clash (an LV or guest of that name on the target that this move did
# not make) refuses the move.
#
# *If this step fails:* a missing bridge: create it on the target (`host-network` there with
# the VLAN named). No space: free some on the target, or choose another host
# (`kvmops fleet fits`). A clash: rename or remove that LV or guest on the target first.

# %%
with nb.step("Check both hosts", if_fails="read the message: it names what is missing on which host"):
    both = proc.read_both(host, peer, guest)
    print(proc.check(both, guest))

# %% [markdown]
# ## Plan
#
# Every stage with the host it runs on. Each stage is planned again from fresh facts of both
# hosts just before it runs; the cleanup stage runs also after a failure.

# %%
move = proc.procedure(both, guest, when, remove_source_disks=remove_source_disks, boot_seconds=boot_seconds,
                      shutdown_timeout=shutdown_timeout)
nb.show_staged(move)

# %% [markdown]
# ## Move
#
# Runs only with `apply=True`, holding the guest's lock on both hosts. Every confirmation is
# checked before the first change. The copy shows its progress every 10 %.
#
# *If this step fails:* the message names the stage. The source guest is defined as before
# (and started again if it ran and its copy never ran). Fix the cause and run again: done
# stages are no-ops. "showed no login prompt": the copy runs on the target but did not
# boot; look at it (`guest-unreachable` there), shut it down there, run again.

# %%
with nb.step("Move the guest", if_fails="read the message; the source guest is untouched; run again"):
    ran = proc.run(host, peer, move, guest, confirm, confirm_disks, progress=nb.progress)
    nb.show_ran(host, move, ran)

# %% [markdown]
# ## Verify
#
# The guest runs on the target from LVs whose copies were checked (sha256 of both ends) and
# booted from; it is no longer defined on the source, its XML is kept there.

# %%
with nb.step("Verify the move", if_fails="check `virsh list --all` and `lvs` on both hosts"):
    nb.verify_with(host, lambda: proc.verify(proc.read_both(host, peer, guest), both, guest, remove_source_disks))
host.close()
peer.close()
