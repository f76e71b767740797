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
# define`, start, autostart, and a look at the serial console to verify the guest boots.
#
# Accounts and address get into the guest in one of two ways (`setup`):
# `nocloud` (default) writes a NoCloud seed ISO that cloud-init in a stock cloud image reads
# at first boot; `tweaks` edits the copied image offline in a chroot, exactly as the guide
# does by hand (login user's keys and password, sudo, serial getty, a NetworkManager keyfile
# for the static address); `none` leaves the image as it is.
#
# **Preconditions (checked below):** the guest name is free; the VLAN is a network of the
# site; a static address lies in the VLAN's network and is not the gateway; the image is a
# raw or qcow2 cloud image on the host and fits the LV; the VG has the space. Re-running
# converges: an existing LV of at least the size is kept, but copying onto an LV that
# existed before this run OVERWRITES it and needs `confirm` equal to it (`rl_build/vmtest2`).

# %% tags=["parameters"]
site = ""  # site file or shipped site name ("": $KVMOPS_SITE, else the demo site)
apply = False  # True executes the changes; False only shows the plan
confirm = ""  # only to overwrite an LV that existed before: exactly VG/LV
guest = "test2"  # the new guest's name (its LV is the site's prefix + name)
vlan = 2368  # the guest network (a VLAN of the site; its bridge is virbr1.<vlan>)
memory = "2g"  # memory (base-2, e.g. 2g or 2048m)
vcpus = 2  # number of vCPUs
size = "10g"  # size of the system disk LV (at least the image's virtual size)
image = "/var/lib/kvmops/images/Rocky-9-GenericCloud.latest.x86_64.qcow2"  # raw or qcow2 image on the host
setup = "nocloud"  # one of: nocloud, tweaks, none
address = ""  # static IPv4 address in the VLAN's network, e.g. 10.5.68.237; "": DHCP
keys = ""  # SSH public key line(s) for the login user, separated by ;
password = ""  # secret: the login user's password ("": key login only)
root_password = ""  # secret: root's password ("": leave root as the image has it)
sudo = True  # with tweaks: give the login user passwordless sudo (the image must have sudo)
autostart = True  # start the guest when the host boots
console_seconds = 60.0  # read the serial console up to this long after the start, until a login prompt (0: skip)

# %%
from kvmops import notebook as nb
from kvmops.guests import lifecycle
from kvmops.guests.spec import guest_spec
from kvmops.images import nocloud
from kvmops.images.copy import copy_plan
from kvmops.images.passwords import Password
from kvmops.facts import Wanted, with_lvs
from kvmops.lvm import ops
from kvmops.lvm.facts import LV
from kvmops.net.address import static_address
from kvmops.units import human, parse_size

host = nb.open_host(site, apply)
login = host.site.login_user
lv = host.site.guest_lv(guest)
disk = f"{host.site.vg}/{lv}"
seed_path = f"{host.site.xml_dir.rstrip('/')}/{guest}-seed.iso"
password = nb.secret("password", password)
root_password = nb.secret("root_password", root_password)

# %% [markdown]
# ## Preconditions
#
# *If this step fails:* a guest of that name exists (pick another name, or remove it with
# `guest-remove`); the image path is wrong (it must be on the KVM host); the address is
# outside the VLAN's network or taken. Nothing was changed.

# %%
with nb.step("Check preconditions", if_fails="fix the parameter named in the message; nothing was changed"):
    net = host.site.network(vlan)
    fixed = static_address(host.site, guest, vlan, address) if address else None
    spec = guest_spec(host.site, guest, memory=memory, vcpus=vcpus, vlans=(vlan,))
    facts = nb.read(host, Wanted(images=(image,)) | lifecycle.define_wanted(host.site, spec))
    info = facts.image(image)
    nb.check(facts.domain(guest) is None, f"guest {guest} exists already: pick another name or use guest-remove")
    print(f"guest {guest}: {vcpus} vCPUs, {memory} memory, bridge {net.bridge}, disk {disk} ({size})")
    print(f"image {image}: {info.format}, {human(info.virtual_size)}; address {fixed.with_prefix if fixed else 'DHCP'}")

# %% [markdown]
# ## Plan
#
# Each part is computed as if the parts before it had run (the LV exists for the copy); with
# `apply=True` every part is planned again just before it runs, from the real state.

# %%
lv_plan = ops.create(facts, lv, parse_size(size))
after_lv = facts if facts.lvm.get(lv) else with_lvs(
    facts, [LV(lv, host.site.vg, "-wi-a-----", parse_size(size), "", None, None)])
copy = copy_plan(after_lv, lv, info)
users = nocloud.users_for(login, [k for k in keys.split(";") if k.strip()],
                          Password.clear(login, password) if password else None,
                          Password.clear("root", root_password) if root_password else None)
net_cfg = nocloud.StaticNet(fixed.with_prefix, str(net.gateway), tuple(str(d) for d in fixed.dns)) if fixed else None
seed = nocloud.seed_plan(nocloud.Seed(guest, users, net_cfg), seed_path) if setup == "nocloud" else None
if setup == "nocloud":
    spec = nocloud.with_seed(spec, seed_path)
for plan in (lv_plan, copy, seed):
    if plan is not None:
        nb.show_plan(plan)
if setup == "tweaks":
    nb.note("Offline tweaks (planned after the copy, from the image's real content): password and keys of "
            f"`{login}`{', sudo' if sudo else ''}, serial getty{', static address ' + fixed.with_prefix if fixed else ''}.")
if not host.apply and setup == "nocloud":
    nb.note("The domain is defined with the seed ISO as its CD-ROM once the seed is written.")
define = lifecycle.define(after_lv, nocloud.with_seed(spec, None))  # the seed is not written yet
nb.show_plan(define)
nb.note(f"Then: start {guest}" + (", autostart on" if autostart else "")
        + (f", read its serial console up to {console_seconds:g} s (until a login prompt)" if console_seconds else "")
        + ".")

# %% [markdown]
# ## Create the LV and copy the image
#
# *If this step fails:* the VG is full (choose a smaller `size`), or the copy failed (the LV
# exists now: re-running skips the LV and copies again; pass `confirm` = the LV then).

# %%
with nb.step("Create the LV and copy the image", if_fails="re-run; pass confirm=VG/LV to copy onto the existing LV"):
    with nb.locked(host, guest, "guest-create"):
        fresh = not lv_plan.empty
        nb.execute(host, lv_plan)
        if host.apply:
            copy = copy_plan(nb.read(host), lv, info)
        nb.execute(host, copy, disk if fresh else confirm)

# %% [markdown]
# ## Accounts, console and address
#
# *If this step fails:* with `tweaks`, the image could not be mounted (is it a Linux cloud
# image?) or an account is missing in it; with `nocloud`, the ISO could not be written to
# the host's `xml_dir`.

# %%
with nb.step("Accounts, console and address", if_fails="check the image; the disk is mapped/mounted no more"):
    if setup == "nocloud":
        with nb.locked(host, guest, "guest-create"):
            nb.execute(host, seed)
    elif setup == "tweaks" and host.apply:
        from kvmops.images import tweaks as tw
        wanted: list[tw.Tweak] = [tw.Sudoers(login)] if sudo else []
        wanted += [tw.SerialGetty()]
        wanted += [tw.SetPassword(Password.clear(login, password))] if password else []
        wanted += [tw.SetPassword(Password.clear("root", root_password))] if root_password else []
        wanted += [tw.AuthorizedKeys(login, tuple(k for k in keys.split(";") if k.strip()))] if keys.strip() else []
        wanted += [tw.StaticIp.from_address(fixed)] if fixed else []
        with nb.locked(host, guest, "guest-create"):
            print(tw.tweak_image(host, nb.read(host), wanted, lv=disk))
    else:
        print("nothing to do here" if setup == "none" else "plan only: the tweaks are planned after the copy")

# %% [markdown]
# ## Define, start, autostart
#
# *If this step fails:* libvirt names what it rejects (a bridge that does not exist: create
# it with `host-network`; a missing emulator: fix the site's `libvirt.emulator`).

# %%
with nb.step("Define and start the guest", if_fails="read libvirt's message; `inventory` shows the host"):
    with nb.locked(host, guest, "guest-create"):
        if host.apply:
            define = lifecycle.define(nb.read(host, lifecycle.define_wanted(host.site, spec)), spec)  # now real
        nb.execute(host, define, confirm)
        if host.apply:
            nb.execute(host, lifecycle.start(nb.read(host), guest))
            if autostart:
                nb.execute(host, lifecycle.autostart(nb.read(host), guest, True))

# %% [markdown]
# ## Verify: the guest runs and its console answers
#
# *If this step fails:* no console output usually means no getty/console on ttyS0 in the
# image (use `setup=tweaks`) or a slow boot (raise `console_seconds`); see `guest-unreachable`.

# %%
with nb.step("Verify the guest", if_fails="follow the guest-unreachable runbook"):
    if host.apply:
        now = host.virt.info(guest)
        nb.check(now.active, f"guest {guest} is {now.state}, not running")
        if console_seconds:
            text = lifecycle.read_console(host, guest, console_seconds, print, until=lifecycle.login_prompt)
            nb.check(text.strip(), f"guest {guest} printed nothing on its serial console in {console_seconds:g} s")
            nb.check("Kernel panic" not in text, f"the kernel of guest {guest} panicked (see its console above)")
        print(f"ok: guest {guest} runs" + (" and answers on its console" if console_seconds else ""))
        print(lifecycle.console_hint(host, guest))
    else:
        print(f"plan only: guest {guest} not created")
host.close()
