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
# plus the kernel on ttyS0 as well), and a static address (a NetworkManager keyfile, or
# `ifcfg` where the image uses it; cloud-init's network step is switched off). Each tweak
# reads the image first and changes only what differs: running it again changes nothing.
#
# **When to use it:** a guest made from a cloud image has no usable login or console, its
# address must become static, or a forgotten password must be reset. New guests get the
# same with `guest-create setup=tweaks`.
#
# **Preconditions (checked below):** the guest is shut off (an image must never be changed
# under a running guest) and its LV exists, or the raw image file is used by no running
# guest; the static address lies in the VLAN's network and is not its gateway (`.254`); the
# login user exists in the image. Passwords are secret parameters: give them with
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
from kvmops.host import Host
from kvmops.images import tweaks as tw
from kvmops.images.passwords import Password
from kvmops.images.probe import probe
from kvmops.net.address import static_address, summary
from kvmops.runners import PlanRunner
from kvmops.units import human

host = nb.open_host(site, apply)
login = host.site.login_user
lv = host.site.guest_lv(guest)
disk = f"{host.site.vg}/{lv}"
password = nb.secret("password", password)


def describe(t: tw.Tweak) -> str:
    """One line for a tweak (never a password or its hash)."""
    if isinstance(t, tw.SetPassword):
        return f"password of {t.password.user} (SHA-512 hash via chpasswd -e)"
    if isinstance(t, tw.AuthorizedKeys):
        return f"{len(t.keys)} SSH key(s) in ~{t.user}/.ssh/authorized_keys"
    if isinstance(t, tw.Sudoers):
        return f"sudo without password for {t.user} in /etc/sudoers.d"
    if isinstance(t, tw.SerialGetty):
        return "login prompt on the serial console (serial-getty@ttyS0)"
    if isinstance(t, tw.GrubSerial):
        return f"GRUB and kernel console on ttyS0,{t.speed} (grub.cfg regenerated)"
    if isinstance(t, tw.StaticIp):
        return f"static address for {t.name} (NetworkManager keyfile or ifcfg; cloud-init network off)"
    return "SELinux relabel on the next boot, when the image uses SELinux"


root_password = nb.secret("root_password", root_password)

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* shut a running guest down first (`guest-lifecycle action=shutdown`);
# fix the address (it must be in the VLAN's network, not `.254`); check the guest name with
# `inventory`. A qcow2 image file cannot be changed in place: tweak the LV it was copied to.
# Nothing was changed.

# %%
with nb.step("Check preconditions", if_fails="fix what the message names; nothing was changed"):
    fixed = static_address(host.site, guest, vlan, address) if address else None
    wanted: list[tw.Tweak] = []
    wanted += [tw.SetPassword(Password.clear(login, password))] if password else []
    wanted += [tw.SetPassword(Password.clear("root", root_password))] if root_password else []
    key_lines = tuple(k.strip() for k in keys.split(";") if k.strip())
    wanted += [tw.AuthorizedKeys(login, key_lines)] if key_lines else []
    wanted += [tw.Sudoers(login)] if sudo else []
    wanted += [tw.SerialGetty(), tw.GrubSerial()] if console else []
    wanted += [tw.StaticIp.from_address(fixed)] if fixed else []
    nb.check(wanted, "nothing to do: give a password, keys, sudo=True, console=True or an address")
    wanted.append(tw.SelinuxRelabel())  # files written offline carry no SELinux labels
    facts = nb.read(host)
    running = facts.domain(guest) is not None and facts.domain(guest).active
    nb.check(not running, f"guest {guest} is running: shut it down first (guest-lifecycle action=shutdown); "
             "an image is never changed under a running guest")
    if image:
        users = facts.running_guests_with_file(image)
        nb.check(not users, f"{image} is a disk of running guest(s) {', '.join(users)}: shut them down first")
        if not host.site.replay:
            info = probe(host.runner, image)
            nb.check(info.format == "raw", f"{image} is a {info.format} image: only raw images can be mounted; "
                     "tweak the LV it was copied to (guest-create copies it)")
            print(f"image {image}: raw, {human(info.virtual_size)}")
    else:
        found = facts.lvm.get(lv)
        nb.check(found is not None, f"guest {guest}: LV {disk} does not exist (see the inventory runbook)")
        nb.check(not facts.lv_in_use(found), f"{disk} is in use: {facts.lv_in_use(found)}")
        print(f"{disk}: {human(found.size)}; guest {guest} is shut off")
    print("tweaks:\n" + "\n".join(f"- {describe(t)}" for t in wanted))
    if fixed:
        print(summary(fixed))
where = {"image": image} if image else {"lv": disk}

# %% [markdown]
# ## Plan
#
# The disk is mapped and its root mounted READ-ONLY to read what is there; each tweak then
# lists the exact commands for what differs (or says "already so"). On a site of recorded
# facts (the demo) the disk cannot be mounted, so only the tweaks are listed.
#
# *If this step fails:* the image has no Linux root, the login user does not exist in it, or
# it lacks a tool a tweak needs (`chpasswd`, `visudo`): the message says which. Whatever was
# mapped or mounted is undone; nothing was changed.

# %%
with nb.step("Plan the tweaks", if_fails="read the message above; nothing was changed"):
    if host.site.replay:
        for t in wanted:
            print(f"- {describe(t)}")
        nb.note(f"SKIPPED: site {host.site.name} replays recorded outputs; the disk cannot be mapped and "
                "mounted there, so the exact commands (computed from the image's content) are not shown. "
                "Run this against the real host to see them (plan mode only mounts read-only).")
    else:
        looking = Host(host.site, PlanRunner(host.runner), host.libvirt_uri)  # read-only, even when applying
        with nb.locked(host, guest, "image-tweak (plan)", reading=True):
            print(tw.tweak_image(looking, nb.read(host), wanted, progress=print, **where))

# %% [markdown]
# ## Apply the tweaks
#
# Runs only with `apply=True`, holding the guest's lock. The disk is mapped and mounted
# read-write, every tweak is planned again from the real content, then applied; unmounted
# and unmapped on every way out.
#
# *If this step fails:* the step named failed; the ones before it are done and stay done.
# Run the runbook again: finished tweaks are "already so", the rest is done.

# %%
with nb.step("Apply the tweaks", if_fails="run the runbook again: done tweaks are skipped"):
    if host.apply:
        with nb.locked(host, guest, "image-tweak"):
            print(tw.tweak_image(host, nb.read(host), wanted, progress=print, **where))
    else:
        print("plan only: nothing was changed; run with apply=True to execute it")

# %% [markdown]
# ## Verify: everything is in place
#
# The tweaks are planned once more from the image's content: each must now say "already so".
#
# *If this step fails:* a tweak that still plans a change did not take effect: look at its
# files in the image (`guest-inspect`).

# %%
with nb.step("Verify the tweaks", if_fails="inspect the image with guest-inspect"):
    if host.apply:
        looking = Host(host.site, PlanRunner(host.runner), host.libvirt_uri)
        again = tw.tweak_image(looking, nb.read(host), wanted, progress=print, **where)
        pending = [line.split("\n")[0] for line in again.lines if ": planned: " in line]
        nb.check(not pending, "not in place: " + "; ".join(pending))
        print(f"ok: every tweak is in place ({again.os})")
        print("start the guest with guest-lifecycle action=start; log in on its console with "
              f"`virsh console {guest}`")
    else:
        print(f"plan only: the disk of {guest} is unchanged")
host.close()
