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
# # Host inventory
#
# What is on the KVM host: every guest with its state, autostart flag, vCPUs, memory,
# bridges and disks; every guest LV with its snapshots and their fill %; the guest bridges
# compared with the site's networks; and the free space in the VG. Read-only: it changes
# nothing, in plan mode and with `apply=True` alike.
#
# **When to use it:** before any change (which guests run, is there room), during an
# incident (is a snapshot filling up, is a bridge down), and as a record of the host's state.
#
# **Preconditions:** the host answers (libvirt, LVM and NetworkManager are read).

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # nothing is ever changed by this runbook
confirm = ""  # not needed
bridges = True  # also compare the guest bridges with the site's networks (reads nmcli, ip)

# %%
from kvmops import notebook as nb
from kvmops.guests.inventory import inventory_of, render_table
from kvmops.procedures import inventory as proc

host = nb.open_host(site, apply)

# %% [markdown]
# ## Guests
#
# *If this step fails:* libvirt does not answer: is libvirtd running on the host
# (`systemctl status libvirtd`)? Over SSH, does `virsh -c qemu+ssh://root@HOST/system list` work?

# %%
with nb.step("Guests", if_fails="check that libvirtd runs and answers (virsh list --all)"):
    facts = nb.read(host, proc.wanted(bridges))
    inventory = inventory_of(facts)
    print(render_table(inventory))

# %% [markdown]
# ## Guest LVs and snapshots
#
# Host LVs (root, home, opt, ...) are never listed. A snapshot at or above the site's
# threshold should be extended (`snapshot-filling-up`) or merged/removed soon.

# %%
with nb.step("Guest LVs and snapshots", if_fails="check the site's VG name and that lvs works on the host"):
    nb.table(*proc.lv_table(facts, inventory))
    print(proc.vg_line(facts))

# %% [markdown]
# ## Guest bridges
#
# Each network of the site needs its bridge `virbr1.<VLAN>` with ageing time 0, no IP
# configuration, and the VLAN port `<uplink>.<VLAN>` (guide 2.2). Missing or drifting bridges
# are fixed with the `host-network` runbook.

# %%
with nb.step("Guest bridges", if_fails="check that NetworkManager runs on the host (nmcli general)"):
    print(proc.bridges(facts, bridges))
host.close()

# %% [markdown]
# ## Keep the inventory as data
#
# The same inventory as data in this notebook: the manual makes its page of this host, and a
# page of each guest, from the latest inventory run in the journal.

# %%
from kvmops.runbook.inventory_data import show_inventory

inventory_kept = show_inventory(facts)
