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
# Look inside a guest's disk without starting it (guide 4.3): map its partitions read-only
# (`kpartx -a -r` for an LV, `losetup --read-only` + `partx --add` for an image file), find
# the root filesystem, mount it `-o ro`, and show its `/etc/os-release`, `/etc/fstab`, the
# last lines of its logs (`/var/log/messages`, `syslog`, ..., the systemd journal when it is
# kept on disk) and `df`. Everything is unmounted and unmapped at the end, also after a
# failure.
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
from kvmops.facts import Wanted
from kvmops.guests import lifecycle
from kvmops.images import inspect
from kvmops.units import human

host = nb.open_host(site, apply)
lv = host.site.guest_lv(guest)
disk = f"{host.site.vg}/{lv}"

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* a running guest must be shut down first (`guest-lifecycle`
# `action=shutdown`, or `guest-unreachable` when it does not react). A missing LV means a
# wrong guest name (see `inventory`). A qcow2 image cannot be mapped: inspect the LV it was
# copied to, or convert it (`qemu-img convert -O raw`). Nothing was changed.

# %%
with nb.step("Check preconditions", if_fails="shut the guest down first; check the name with inventory"):
    facts = nb.read(host, Wanted(images=(image,)) if image and not host.site.replay else None)
    info = facts.domain(guest)
    nb.check(info is None or not info.active, f"guest {guest} is running: its disk must not be mapped or mounted now; shut it "
             "down first (guest-lifecycle action=shutdown), or use guest-unreachable")
    if image:
        users = facts.running_guests_with_file(image)
        nb.check(not users, f"{image} is a disk of running guest(s) {', '.join(users)}: shut them down first")
        if host.site.replay:
            print(f"image {image}: not probed (site {host.site.name} replays recorded facts)")
        else:
            probed = facts.image(image)
            nb.check(probed.format == "raw", f"{image} is a {probed.format} image: only raw images can be mapped; "
                     "inspect the LV it was copied to, or convert it with qemu-img convert -O raw")
            print(f"image {image}: raw, {human(probed.virtual_size)}")
    else:
        found = facts.lvm.get(lv)
        nb.check(found is not None, f"guest {guest}: LV {disk} does not exist (see the inventory runbook)")
        print(f"{disk}: {human(found.size)}; guest {guest} is not running")

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
    with nb.locked(host, guest, "guest-inspect", reading=True):  # no run may change the disk meanwhile
        report = nb.inspect_disk(host, nb.read(host), image=image or None, lv=None if image else disk, lines=lines)

# %% [markdown]
# ## Verify: nothing is left mapped or mounted
#
# *If this step fails:* unmount the folder named (`umount --recursive MNT`), then unmap
# (`kpartx -d /dev/mapper/VG-LV` or `partx -d /dev/loopN; losetup -d /dev/loopN`).

# %%
with nb.step("Verify the cleanup", if_fails="unmount and unmap by hand as described above"):
    if report is None:
        print("plan only: nothing was mapped or mounted")
    else:
        left = inspect.leftovers(host.runner, report)
        nb.check(not left, "left behind: " + "; ".join(left))
        print(f"ok: {report.source} is unmounted and unmapped again ({report.mountpoint} removed)")
host.close()
