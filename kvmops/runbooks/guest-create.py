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
# # Create a guest from a cloud image
#
# The guide's guest creation (3.2) with the image tweaks it needs (3.3), end to end: an LV
# for the system disk, the cloud image copied onto it, accounts / serial console / static
# address, the domain XML from the site's template (kept in the site's `xml_dir`), `virsh
# define`, start, autostart; then the boot is verified on the serial console, and only after
# that the NoCloud seed (it holds password hashes) is retired. All of it is one procedure: its
# confirmations are checked before its first change.
#
# Accounts and address get into the guest in one of two ways (`setup`):
# `nocloud` (default) writes a NoCloud seed ISO that cloud-init in a stock cloud image reads
# at first boot; `tweaks` edits the copied image offline in a chroot, exactly as the guide
# does by hand (the login user's and root's keys and passwords, sudo, a serial getty, a
# NetworkManager profile for the static address, an SELinux relabel where the image uses
# SELinux); `none` leaves the image as it is.
#
# **Multihomed guests** (guide 2.2): `vlans` lists the guest's networks, one NIC on each
# VLAN's bridge, in that order (`"2368,223"`: NIC 1 on virbr1.2368, NIC 2 on virbr1.223).
# Any NIC can have a static address, one per VLAN: `address` is the first VLAN's (as the
# guide's single-homed guests have it), `addresses` gives any VLAN's as `VLAN=ADDRESS`
# (`"2368=10.5.68.237,223=132.230.223.200"`). The default route goes via the gateway of one
# of them: the first NIC's, or the one `gateway_vlan` names; the DNS servers are set once, on
# that NIC. A NIC without a static address uses DHCP, if its VLAN has it (some of our networks
# have none: give those NICs an address).
#
# **MAC addresses, chosen before the guest exists.** Every NIC gets its MAC from kvmops, not
# from libvirt: derived from the site's name, the guest's name and the NIC's place (in
# libvirt's `52:54:00` range), and checked against every MAC of the host's guests (and of the
# `fleet`'s, when given); the plan shows it and the domain XML carries it. So the addresses
# follow the NIC whatever the image calls it (`eth0` in the guide's images, `enp1s0` with
# predictable names): the NoCloud network-config matches each NIC by its MAC, and `tweaks`
# edits the image's NetworkManager profile that binds the NIC (by MAC where the image binds
# by MAC, by name where it binds by name). And the DHCP reservation the guide asks for (3.3.3)
# can be made with the MAC shown below, before the guest's first boot.
#
# **Preconditions (checked below):** the guest name is free; every VLAN is a network of the
# site; each static address lies in its VLAN's network and is not the gateway; `gateway_vlan`
# has a static address; the image is a raw or qcow2 cloud image on the host and fits the LV;
# the VG has the space; no NIC's MAC is another guest's.
#
# **Confirmations, all checked before the first change:** copying onto an LV that existed
# before this run OVERWRITES it: `confirm` = the LV (`rl_build/vmtest2`); an old kept XML
# file of the same name that differs is replaced only with `confirm` = the guest's name.
# Give both comma-separated. An LV this run creates needs no confirmation.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # only to overwrite an LV that existed before (VG/LV) or a different kept XML (the guest's name)
guest = "test2"  # the new guest's name (its LV is the site's prefix + name)
vlans = "2368"  # the guest's networks, comma-separated: one NIC per VLAN, e.g. 2368 or 2368,223
memory = "2g"  # memory (base-2, e.g. 2g or 2048m)
vcpus = 2  # number of vCPUs
size = "10g"  # size of the system disk LV (at least the image's virtual size)
image = "/var/lib/kvmops/images/Rocky-9-GenericCloud.latest.x86_64.qcow2"  # raw or qcow2 image on the host
setup = "nocloud"  # one of: nocloud, tweaks, none
address = ""  # static IPv4 address of the first VLAN's NIC, e.g. 10.5.68.237; "": see addresses (else DHCP)
addresses = ""  # static addresses of any of its VLANs: VLAN and address joined by an equals sign, comma-separated (see above)
gateway_vlan = 0  # the VLAN whose NIC carries the default route (0: the first VLAN, if it has a static address)
fleet = ""  # other hosts whose guests' MACs to avoid too: site files or an Ansible inventory, comma-separated
keys = ""  # SSH public key line(s) for the login user, separated by ;
root_keys = ""  # SSH public key line(s) for root, separated by ; (guide 3.3.1)
password = ""  # secret: the login user's password ("": key login only)
root_password = ""  # secret: root's password ("": leave root as the image has it)
sudo = True  # give the login user passwordless sudo (tweaks: the image must have sudo)
autostart = True  # start the guest when the host boots
console_seconds = 120.0  # how long to wait for a login prompt on the serial console after the start

# %%
from kvmops import notebook as nb
from kvmops.procedures import guest_create as gc
from kvmops.procedures.fleet_macs import read_fleet_macs

host = nb.open_host(site, apply)
password = nb.secret("password", password)
root_password = nb.secret("root_password", root_password)

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* a guest of that name exists (pick another name, or remove it with
# `guest-remove`); a VLAN is not a network of the site; the image path is wrong (it must be
# on the KVM host); an address is outside its VLAN's network, or `gateway_vlan` names a VLAN
# without one; a host of `fleet` does not answer. Nothing was changed.
#
# The lines below show each NIC with its MAC: make the DHCP reservation the NOTE asks for
# now, before the guest's first boot.

# %%
with nb.step("Check preconditions", if_fails="fix the parameter named in the message; nothing was changed"):
    req = gc.request(host.site, guest, vlans=vlans, memory=memory, vcpus=vcpus, size=size, image=image,
                     setup=setup, address=address, addresses=addresses, gateway_vlan=gateway_vlan, keys=keys,
                     root_keys=root_keys, password=password, root_password=root_password, sudo=sudo,
                     autostart=autostart, console_seconds=console_seconds)
    req = gc.with_fleet(req, read_fleet_macs(fleet, host.site, print))  # fleet="": none to avoid
    facts = nb.read(host, gc.wanted(host.site, req))
    print("\n".join(gc.check(facts, req)))

# %% [markdown]
# ## Plan
#
# Every part, computed as if the parts before it had run (the LV exists for the copy, the
# seed for the definition). With `apply=True` each part is planned again from the host as it
# is just before it runs; a part that would then need a confirmation nobody gave is refused.
# With `setup=tweaks` the tweaks' exact commands depend on the image's files, so they are
# planned once the image is on the LV. The start waits for a login prompt on the serial
# console (`console_seconds`; 0 skips it, and then nothing claims a boot). The seed is retired
# only after that verified boot; when this run verifies none, its plan says why it stays.

# %%
create = gc.procedure(facts, req)
nb.show_procedure(create)

# %% [markdown]
# ## Create the guest, verify its boot, retire the seed
#
# Every confirmation is checked first: a missing one refuses the run and nothing changes.
# The executor holds the guest's lock throughout. After the start, the serial console is
# read until a login prompt shows (the decisive signal; boot-loader lines are not a boot); a
# guest under TCG may need minutes. Only then the seed is retired: cloud-init has read it, and
# it holds password hashes. It is ejected from the running guest, dropped from the definition
# and the kept XML, and removed. (With `setup=tweaks` or `none` there is no seed.)
#
# *If this step fails:* the VG is full (choose a smaller `size`); the copy failed (the LV
# exists now: running again keeps it and copies again, which needs `confirm` = the LV); with
# `tweaks` the image could not be mounted or lacks an account or tool (the message names
# it); libvirt rejects the definition (a missing bridge: create it with `host-network`).
# "boot NOT verified" quotes the last console lines and what they may mean: no getty on
# ttyS0 (use `setup=tweaks`), a slow boot (raise `console_seconds`), a kernel panic (more
# `memory`); follow `guest-unreachable`. The seed stays until a boot is verified: then run
# `kvmops guest seed-done NAME --apply` (it converges). Each part that is done stays done;
# running again continues from the host as it is.

# %%
with nb.step("Create the guest", if_fails="read the message; run again with the confirmation it names"):
    nb.run_procedure(host, create, confirm)

# %% [markdown]
# ## Verify: defined, running, the seed retired
#
# libvirt is asked afresh: the guest is defined as asked, runs, has autostart; its definition
# is kept; and when this run retired the seed, it is gone from the guest's drive, its
# definition, the kept XML and the disk. Its console: `kvmops guest console NAME` (CTRL-]
# detaches).

# %%
with nb.step("Verify the guest", if_fails="follow the guest-unreachable runbook"):
    nb.verify(host, lambda now: gc.verify(now, req, facts), gc.verify_wanted(host.site, req))
host.close()
