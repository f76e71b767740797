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
# # Host recovery after a power outage
#
# **Incident runbook.** The KVM host lost its power and has booted again. This runbook finds
# which guests were meant to run, checks their disks, and starts the missing ones in a
# declared order (name servers and databases before the services that use them), waiting for
# each to boot before the next one starts.
#
# **Which guests were meant to run:** those with autostart on, and those that libvirt's own
# log (`/var/log/libvirt/qemu/<guest>.log`, kept on the host's disk) shows running when the
# host went down: a run that started before the host's last boot and never wrote its
# "shutting down" line. A clean shutdown of the host writes that line for every guest, so a
# guest somebody had stopped on purpose is left off.
#
# **What is checked before a guest starts:** its disk LVs exist and are active; no snapshot
# of them has overflowed (INVALID); no snapshot merge is under way. A merge that the outage
# interrupted resumes when LVM activates the LV at boot, but on a host without `lvmpolld`
# nothing may poll it to its end after a reboot: the snapshot stays listed at 0.00 % for ever.
# So the runbook runs `lvchange --poll y VG/ORIGIN` (it resumes the polling of a merge that is
# already under way and never starts one), then **waits for it, never starts it again**
# (`lvconvert --mergesnapshot` is not run here); the guest starts only once it has finished.
#
# **Order and boot:** `order` (or the site's `[recovery] order`) names the guests to start
# first, in that order; the others follow by name. After each start the runbook reads the
# guest's serial console until a login prompt shows (at most `boot_seconds`); a guest that
# shows none stops the run, and the guests after it are not started: a service whose name
# server did not come back would not work either. Look at that guest with
# `guest-unreachable` (console, serial log, its disk read-only), then run this runbook again.
#
# Re-running is safe: every start is planned again from the host as it is at that moment,
# and a guest that runs already (libvirt's autostart, an earlier run) is never started twice.
# Starting a guest destroys nothing, so `confirm` is not needed.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True starts the guests; False only shows the plan
confirm = ""  # not needed: starting guests destroys nothing
order = ""  # guests to start first, in order, e.g. "dns1,db1" ("": the site's [recovery] order)
boot_seconds = 0.0  # seconds each guest may take to show a login prompt (0: the site's, 300 by default)

# %%
from kvmops import notebook as nb
from kvmops.procedures import host_recovery as rec

host = nb.open_host(site, apply)
first = rec.order_of(host.site, order)
wait = boot_seconds or host.site.recovery_boot_seconds

# %% [markdown]
# ## What was meant to run, what runs, and what blocks
#
# *If this step fails:* libvirt does not answer: start libvirtd (`systemctl start libvirtd`)
# and run this again. Nothing was changed.

# %%
with nb.step("Read the host", if_fails="start libvirtd and check `lvs` on the host; nothing was changed"):
    facts = nb.read(host, rec.WANTED)
    checks = rec.assess(facts)
    nb.table(*rec.table(checks))

# %% [markdown]
# ## Plan: the order, and each guest's start and wait
#
# Each guest's steps are computed from the host as read above; with `apply=True` each guest is
# planned again just before it starts.

# %%
with nb.step("Plan the starts", if_fails="fix the order: it may only name guests of this host"):
    recovery = rec.procedure(facts, first, wait)
    nb.show_procedure(recovery)

# %% [markdown]
# ## Start the guests, one after the other
#
# *If this step fails:* a guest showed no login prompt in time (its console's last lines are
# in the message): the guests after it were not started. Follow `guest-unreachable` for it.
# A merge that does not finish: check `lvs -a` on the host; do not start the guest meanwhile.

# %%
with nb.step("Start the guests", if_fails="follow guest-unreachable for the guest named; then run this again"):
    nb.run_procedure(host, recovery, confirm)

# %% [markdown]
# ## Verify
#
# Every guest that was meant to run runs, and no merge is pending on its disks.

# %%
with nb.step("Verify", if_fails="run the inventory runbook and look at the guests named"):
    nb.verify(host, rec.verify, rec.WANTED)
host.close()
