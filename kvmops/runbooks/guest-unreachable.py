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
# # Incident: a guest is down or unreachable
#
# Work out why a guest does not answer (no ping, no SSH, its service is gone), from the host:
# its state in libvirt, what it prints on its serial console right now, its serial log file
# (when the domain writes one), and, once it is shut off, its disk mounted READ-ONLY with its
# journal or log files, accounts and `df` (as `guest-inspect` shows them). Ends with
# suggestions of what to do next, computed from what was seen (a kernel panic, emergency
# mode, an OOM kill, a full filesystem, a missing disk LV, a silent console).
#
# **When to use it:** monitoring or a user reports a guest down; `ssh` to it hangs; it does
# not come back after a reboot of the host.
#
# **Preconditions (checked below):** the guest is defined. Everything here only reads,
# except forcing a running but hung guest off (`destroy=True`): that is like pulling the
# power cord, needs `apply=True` and `confirm` equal to the guest's name, and is only worth
# it when the console shows the guest is hung (a kernel panic, a hung task) and it must be
# looked at from outside.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the destroy (only with destroy True); everything else only reads
confirm = ""  # only with destroy True: the guest's name
guest = "test1"  # the guest that is down or unreachable
seconds = 10.0  # how long to read the serial console of a running guest (0: skip)
lines = 30  # how many of the last lines of each log to show
destroy = False  # force a running guest off first, to inspect its disk (needs apply, and confirm set to the guest)

# %%
from kvmops import notebook as nb
from kvmops.procedures import guest_unreachable as proc

host = nb.open_host(site, apply)

# %% [markdown]
# ## 1. State from libvirt
#
# *If this step fails:* the guest is not defined (check the name with `inventory`; a guest
# that was removed cannot be reached), or libvirt does not answer (is libvirtd running?
# `systemctl status libvirtd` on the host).

# %%
with nb.step("Read the guest's state", if_fails="check the name with inventory; is libvirtd running?"):
    facts = nb.read(host)
    found = proc.state(facts, guest)
    nb.table(*proc.state_table(found))
    nb.table(*proc.disk_table(found))

# %% [markdown]
# ## 2. The serial console
#
# What the guest prints on its serial console for `seconds` seconds (a login prompt, a
# kernel panic, an emergency shell, a fsck question, nothing at all). Read-only: it does not
# take the console from someone attached with `virsh console`.
#
# *If this step fails:* someone is attached to the console: detach there (CTRL-]) or attach
# yourself with `virsh console GUEST`.

# %%
with nb.step("Read the serial console", if_fails="attach with `virsh console GUEST` from a shell"):
    print(proc.console(host, found, seconds, print))

# %% [markdown]
# ## 3. The serial log
#
# A domain with `<log file=.../>` in its `<serial>` element keeps everything its console
# printed in that file on the host, also from before this incident.

# %%
with nb.step("Read the serial log", if_fails="read the file on the host with `tail`"):
    print(proc.serial_log(host, found, lines))

# %% [markdown]
# ## 4. Force it off (only with `destroy=True`)
#
# A hung guest's disk can only be inspected once it is off. `destroy` pulls the plug: data
# the guest has not written yet is lost. Needs `apply=True` and `confirm` = the guest's name.
#
# *If this step fails:* read libvirt's message; the guest is still in the state shown above.

# %%
with nb.step("Force the guest off", if_fails="read libvirt's message; nothing else was changed"):
    force_off = proc.procedure(facts, guest, destroy)
    nb.show_procedure(force_off)
    nb.run_procedure(host, force_off, confirm)
    proc.refresh(found, nb.read(host))

# %% [markdown]
# ## 5. Its disk, read-only
#
# Only when the guest is off: its system disk is mapped read-only, the root mounted `-o ro`,
# and what `guest-inspect` shows read (os-release, fstab, accounts, journal or log files,
# `df`); everything is unmounted and unmapped again, also after a failure.
#
# *If this step fails:* see `guest-inspect`; nothing was left mapped or mounted.

# %%
with nb.step("Inspect the disk", if_fails="run guest-inspect for the details; nothing was changed"):
    disk = proc.look_at_disk(host, found, destroy, lines)
    nb.show_plans(disk.plans)
    print(disk.text)

# %% [markdown]
# ## What next
#
# Suggestions from what was found above.

# %%
with nb.step("Suggest what to do next"):
    nb.show_lines(proc.seen_lines(found))
    nb.note(proc.next_steps(found))
host.close()
