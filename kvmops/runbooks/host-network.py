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
from kvmops.net import ops
from kvmops.net.drift import check_network, render, drift_report
from kvmops.net.facts import read_facts

host = nb.open_host(site, apply)
net = host.site.network(vlan)
want_stp = {"keep": None, "on": True, "off": False}[stp]

# %% [markdown]
# ## Preconditions: the network now
#
# *If this step fails:* "NetworkManager is not running" - start it (`systemctl start
# NetworkManager`); a VLAN that is not in the site file - add it there first.

# %%
with nb.step("Read the network facts", if_fails="check NetworkManager on the host (nmcli general)"):
    facts = read_facts(host.runner)
    nb.check(facts.nm_running, f"NetworkManager does not answer on {host.name}: {facts.nm_error}")
    before = check_network(host.site, facts, net)
    print(f"VLAN {net.vlan}: bridge {net.bridge}, {net.cidr}, gateway {net.gateway}")
    for f in before.findings:
        print(f"  {f.severity}: {f.problem}")
    if before.ok:
        print("  the bridge is as the guide wants it")

# %% [markdown]
# ## Plan

# %%
plan = ops.ensure_network(host.site, facts, vlan, want_stp)
nb.show_plan(plan)

# %% [markdown]
# ## Create or repair the bridge and its VLAN port
#
# *If this step fails:* `Error: invalid <setting>.<property> 'controller'` means a too old
# NetworkManager for the newer words (kvmops uses `master`/`slave-type`, which 1.42 knows).
# "Unknown device type" for the VLAN: the kernel lacks 802.1Q (`modprobe 8021q`). What was
# created stays; re-running completes the rest.

# %%
with nb.step("Create or repair the bridge", if_fails="read nmcli's message; re-running completes the rest"):
    nb.execute(host, plan, confirm)

# %% [markdown]
# ## Verify
#
# The bridge is active with ageing time 0 and no address, the VLAN port is enslaved.

# %%
with nb.step("Verify the bridge", if_fails="compare `nmcli con show` and `ip -d link show` with the guide"):
    if host.apply:
        after = check_network(host.site, read_facts(host.runner), net)
        nb.check(after.ok, "still drifting: " + "; ".join(f.problem for f in after.findings))
        print(f"ok: {net.bridge} carries VLAN {net.vlan}")
    else:
        print(render(drift_report(host.site, facts)))
host.close()
