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
# # Host network: a guest bridge for a VLAN
#
# Create (or repair) the bridge that carries one guest network (guide 2.2): a bridge
# `virbr1.<VLAN>` with ageing time 0 and no IP configuration (IPv4 and IPv6 disabled), and
# the tagged VLAN interface `<uplink>.<VLAN>` as its port, all as NetworkManager profiles so
# that they survive a reboot. Guests then only name the bridge in their `<interface>`.
#
# **When to use it:** a new VLAN for guests, or the `inventory` runbook reports drift of a
# bridge. Re-running converges: what is right already is a no-op.
#
# **Preconditions (checked below):** the VLAN is one of the site's networks (the site file
# lists VLAN, CIDR and bridge), NetworkManager runs on the host, and the uplink exists.
# Nothing is destroyed, so `confirm` is not needed. **Never** run it against the machine's own
# management interface: the uplink comes from the site file.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # not needed: nothing is removed
vlan = 2367  # the VLAN id of the guest network (must be in the site's networks)
stp = "keep"  # spanning tree on the bridge: one of: keep, on, off (NetworkManager's default is on)

# %%
from kvmops import notebook as nb
from kvmops.procedures import host_network as proc

host = nb.open_host(site, apply)
want_stp = proc.stp_choice(stp)

# %% [markdown]
# ## Preconditions: the network now
#
# What the site file says about the VLAN, and how its bridge on the host differs from the
# guide (nothing listed: it is as the guide wants it).
#
# *If this step fails:* "NetworkManager does not answer" - start it (`systemctl start
# NetworkManager`); a VLAN that is not in the site file - add it there first.

# %%
with nb.step("Read the network facts", if_fails="check NetworkManager on the host (nmcli general)"):
    facts = nb.read(host, proc.wanted())
    print(proc.check(facts, vlan))

# %% [markdown]
# ## Plan
#
# The exact commands; nothing has run yet. What is right already is a no-op.

# %%
network = proc.procedure(facts, vlan, want_stp)
nb.show_procedure(network)

# %% [markdown]
# ## Create or repair the bridge and its VLAN port
#
# Runs only with `apply=True`; the plan is made again from the host as it is at that moment.
#
# *If this step fails:* `Error: invalid <setting>.<property> 'controller'` means a too old
# NetworkManager for the newer words (kvmops uses `master`/`slave-type`, which 1.42 knows).
# "Unknown device type" for the VLAN: the kernel lacks 802.1Q (`modprobe 8021q`). What was
# created stays; re-running completes the rest.

# %%
with nb.step("Create or repair the bridge", if_fails="read nmcli's message; re-running completes the rest"):
    nb.run_procedure(host, network, confirm)

# %% [markdown]
# ## Verify
#
# Read from the host again: the kernel's bridge has ageing time 0 and no address, the VLAN
# interface is its port, and NetworkManager's profile (which survives a reboot) is active
# with IP disabled.

# %%
with nb.step("Verify the bridge", if_fails="compare `nmcli con show` and `ip -d link show` with the guide"):
    nb.verify(host, lambda now: proc.verify(now, vlan), proc.wanted())
host.close()
