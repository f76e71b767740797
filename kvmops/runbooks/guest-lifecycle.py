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
# # Guest lifecycle: start, shut down, destroy, autostart, console, guestinfo
#
# The everyday `virsh` tasks of the guide (4.1), done through libvirt: show a guest's state,
# start it, shut it down gracefully (ACPI, then wait until it is off), force it off
# (`destroy`: like pulling the power cord), turn autostart on or off (this does not start or
# stop it), read its serial console for a few seconds, or ask the QEMU guest agent for
# `guestinfo`.
#
# **When to use it:** any planned start/stop, before disk work (snapshots, resizes and
# merges need a shut-off guest), and in an incident (`guest-unreachable` for the full
# procedure).
#
# **Preconditions (checked below):** the guest is defined. `destroy` is destructive and needs
# `confirm` equal to the guest's name. `console` and `guestinfo` only read; `guestinfo` needs
# the QEMU guest agent running inside the guest.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # only for destroy: the guest's name
guest = "test1"  # the guest (its libvirt name)
action = "status"  # one of: status, start, shutdown, destroy, autostart, noautostart, console, guestinfo
seconds = 10.0  # how long to read the serial console (action console, or after start)
timeout = 120.0  # how long shutdown waits for the guest to power off

# %%
from kvmops import notebook as nb
from kvmops.procedures import guest_lifecycle as gl

host = nb.open_host(site, apply)

# %% [markdown]
# ## Preconditions: the guest and its state
#
# *If this step fails:* the guest is not defined (check the name with `inventory`), the
# action is not one of those listed, or libvirt does not answer (is libvirtd running?).

# %%
with nb.step("Read the guest's state", if_fails="check the name with the inventory runbook"):
    facts = nb.read(host)
    info = gl.check(facts, guest, action)
    nb.table([gl.status_row(info)], ["guest", "state", "autostart", "persistent"])

# %% [markdown]
# ## Plan

# %%
change = gl.procedure(facts, guest, action, seconds=seconds, timeout=timeout)
nb.show_procedure(change)

# %% [markdown]
# ## Do it
#
# *If this step fails:* a guest that does not power off within `timeout` ignores ACPI
# (no acpid, or it hangs): look at its console, then `destroy` it if it must go down now.
# A guest that does not start: read libvirt's message (a missing disk LV or bridge is named
# there; `inventory` shows both).

# %%
with nb.step(f"{action} guest {guest}", if_fails="read the message above; the console shows what the guest does"):
    nb.run_procedure(host, change, confirm)
    nb.show_lines(gl.read(host, guest, action, seconds, print))

# %% [markdown]
# ## Verify
#
# libvirt is asked again: the guest's state must be what the action wanted.

# %%
with nb.step("Verify the state", if_fails="look at the guest's console and libvirt's log on the host"):
    nb.verify(host, lambda now: gl.verify(now, guest, action))
host.close()
