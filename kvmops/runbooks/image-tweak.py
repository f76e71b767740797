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
# # Tweak an existing guest disk or image offline
#
# The guide's image tweaks (3.3), done in a chroot on the host while the guest is off:
# accounts (the login user's and root's password, the login user's SSH `authorized_keys`,
# sudo rights in `/etc/sudoers.d`), console access (a getty on the serial console, and GRUB
# plus the kernel on ttyS0 as well), and a static address. Each tweak reads the image first
# and changes only what differs: running it again changes nothing.
#
# - **The login user** is created when the image lacks it: a stock GenericCloud image has no
#   `centos`/`rocky` user until cloud-init runs, so the guide's offline `passwd centos` would
#   fail. It is made as cloud-init would make it: the groups and shell of the image's own
#   `/etc/cloud/cloud.cfg` (`system_info.default_user`), else `/bin/bash` and `wheel`.
# - **The static address** goes into the image's EXISTING NetworkManager profile that binds
#   the guest's NIC on that VLAN (a keyfile in `/etc/NetworkManager/system-connections`, e.g.
#   cloud-init's `cloud-init-enp1s0.nmconnection`, or `ifcfg-eth0`), changed as the guide's
#   `nmcli con mod` changes it. A profile bound to the NIC's MAC (the guest's definition
#   names it) is found by the MAC and stays bound by it; one bound by name stays bound by
#   name. A second profile for the NIC would compete with it: it is switched off. A new
#   keyfile, bound to the MAC, is written only when the image has no profile for the NIC;
#   cloud-init's network step is switched off.
#
# **When to use it:** a guest made from a cloud image has no usable login or console, its
# address must become static, or a forgotten password must be reset. New guests get the
# same with `guest-create setup=tweaks`.
#
# **Preconditions (checked below):** the guest is shut off (an image must never be changed
# under a running guest) and its LV exists, or the raw image file is used by no running
# guest; the static address lies in the VLAN's network and is not its gateway (`.254`).
# Passwords are secret parameters: give them with
# `kvmops run ... -p password ...` / `--ask password` (never stored), or type them when asked
# in Jupyter.

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # not needed: the tweaks only add or replace configuration
guest = "influx"  # the guest whose disk to tweak (it must be shut off); with image: the guest using it
image = ""  # a raw image file on the host to tweak instead of the guest's LV
password = ""  # secret: the login user's new password ("": leave it)
root_password = ""  # secret: root's new password ("": leave it)
keys = ""  # SSH public key line(s) to add for the login user, separated by ;
sudo = True  # give the login user passwordless sudo (/etc/sudoers.d, 440 root:root)
console = True  # a login on the serial console (getty) and GRUB/kernel output on ttyS0
vlan = 2368  # the guest network of the static address (a VLAN of the site)
address = ""  # static IPv4 address in the VLAN's network, e.g. 10.5.68.237; "": leave the network as is

# %%
from kvmops import notebook as nb
from kvmops.procedures import image_tweak as proc

host = nb.open_host(site, apply)
password = nb.secret("password", password)
root_password = nb.secret("root_password", root_password)
where = proc.source(host.site, guest, image)

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* shut a running guest down first (`guest-lifecycle action=shutdown`);
# fix the address (it must be in the VLAN's network, not `.254`) or a key (each an OpenSSH
# public key line); check the guest name with `inventory`. A qcow2 image file cannot be
# changed in place: tweak the LV it was copied to. Nothing was changed.

# %%
with nb.step("Check preconditions", if_fails="fix what the message names; nothing was changed"):
    req = proc.request(host.site, guest, password=password, root_password=root_password, keys=keys, sudo=sudo,
                       console=console, vlan=vlan, address=address)
    facts = nb.read(host, proc.wanted(image))
    req = proc.on_its_nic(facts, req)  # the guest's NIC on that VLAN: its MAC binds the profile
    print(proc.check(facts, guest, image))
    print(req.render())

# %% [markdown]
# ## Plan
#
# The disk is mapped and its root mounted READ-ONLY to read what the tweaks need (holding the
# guest's lock meanwhile); each tweak then lists the exact commands for what differs (or
# says "already so"), all of them before anything changes. On a site of recorded facts (the
# demo) the disk cannot be mounted, so the plan says that its commands are not planned there.
#
# *If this step fails:* the image has no Linux root, or it lacks a tool a tweak needs
# (`useradd`, `chpasswd`, `visudo`): the message says which. Whatever was mapped or mounted
# is undone; nothing was changed.

# %%
with nb.step("Plan the tweaks", if_fails="read the message above; nothing was changed"):
    tweak = proc.procedure(host, facts, guest, req.tweaks, where)
    nb.show_procedure(tweak)

# %% [markdown]
# ## Apply the tweaks
#
# Runs only with `apply=True`; the executor holds the guest's lock. The disk is mapped and
# mounted read-write, the content read afresh, every tweak planned again from it, then
# applied; unmounted and unmapped on every way out.
#
# *If this step fails:* the step named failed; the ones before it are done and stay done.
# Run the runbook again: finished tweaks are "already so", the rest is done.

# %%
with nb.step("Apply the tweaks", if_fails="run the runbook again: done tweaks are skipped"):
    nb.run_procedure(host, tweak, confirm)

# %% [markdown]
# ## Verify: everything is in place
#
# The image is looked at again (read-only) and every tweak planned once more: each must now
# say "already so". Then start the guest (`guest-lifecycle action=start`) and log in on its
# console (`virsh console GUEST`).
#
# *If this step fails:* a tweak that still plans a change did not take effect: look at its
# files in the image (`guest-inspect`).

# %%
with nb.step("Verify the tweaks", if_fails="inspect the image with guest-inspect"):
    nb.verify_with(host, lambda: proc.verify(host, guest, req.tweaks, where))
host.close()
