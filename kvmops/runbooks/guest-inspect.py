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
# # Inspect a guest's disk read-only
#
# Look inside a guest's disk without starting it (guide 4.3): first the partition table it
# is about to map (`kpartx -l`; `partx --show` for an image file), then its partitions mapped
# read-only (`kpartx -a -r` for an LV, `losetup --read-only` + `partx --add` for an image
# file), the root filesystem found and mounted `-o ro`, and shown: its `/etc/os-release`,
# `/etc/fstab`, the accounts one can log in as (password set or locked, never a hash; the
# SSH keys in their `authorized_keys`, by whose keys they are), the last entries of its
# journal when it keeps one on disk (`journalctl --directory`; else the last lines of
# `/var/log/messages`, `syslog`, ...) and `df`. Everything is unmounted and unmapped at the
# end, also after a failure.
#
# **When to use it:** a guest does not boot or is unreachable (see `guest-unreachable`),
# you need a file from a stopped guest, or you want to know what an image holds before
# using it.
#
# **Preconditions (checked below):** the guest is not running (a running guest's disk
# changes under the mount, and the guide forbids mapping it); its LV exists, or the image
# file is a raw image no running guest uses. Nothing on the disk is changed: `apply` and
# `confirm` make no difference here.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # nothing is ever changed: every command only reads
confirm = ""  # not needed: nothing is changed
guest = "influx"  # the guest whose disk to inspect (it must not be running); with image: the guest using it
image = ""  # a raw image file on the host to inspect instead of the guest's LV
lines = 30  # how many of the last lines of each log file to show

# %%
from kvmops import notebook as nb
from kvmops.procedures import guest_inspect as proc

host = nb.open_host(site, apply)
where = proc.source(host.site, guest, image)

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* a running guest must be shut down first (`guest-lifecycle`
# `action=shutdown`, or `guest-unreachable` when it does not react). A missing LV means a
# wrong guest name (see `inventory`). A qcow2 image cannot be mapped: inspect the LV it was
# copied to, or convert it (`qemu-img convert -O raw`). Nothing was changed.

# %%
with nb.step("Check preconditions", if_fails="shut the guest down first; check the name with inventory"):
    facts = nb.read(host, proc.wanted(image))
    print(proc.check(facts, guest, image))

# %% [markdown]
# ## Look inside
#
# First the commands (all read-only), then what they found. On a site of recorded facts
# (the demo) only the commands are shown: a disk cannot be mapped or mounted there. The
# guest's lock is held meanwhile: a run that changes the guest waits for none of this, it is
# refused (and this step is refused while such a run works on the guest).
#
# *If this step fails:* "no partition holds a Linux filesystem": not a Linux image, or its
# root is on LVM inside the image (not supported here: the guest's VG name may clash with
# the host's). "device mapper prerequisites not met": this machine has no device-mapper, so
# kpartx cannot map an LV (use the real host). "locked by another run": another runbook is
# changing this guest; wait for it. Whatever was mapped or mounted is undone.

# %%
with nb.step("Inspect the disk", if_fails="read the message above; everything was unmounted and unmapped"):
    nb.show_plan(proc.preview(where, lines))
    inspection = proc.look_inside(host, guest, where, lines)
    print(inspection.render())

# %% [markdown]
# ## Verify: nothing is left mapped or mounted
#
# *If this step fails:* unmount the folder named (`umount --recursive MNT`), then unmap
# (`kpartx -d /dev/mapper/VG-LV` or `partx -d /dev/loopN; losetup -d /dev/loopN`).

# %%
with nb.step("Verify the cleanup", if_fails="unmount and unmap by hand as described above"):
    nb.judge(proc.verify(host, inspection))
host.close()
