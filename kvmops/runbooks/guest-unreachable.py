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
# (when the domain writes one), and, once it is shut off, its disk mounted READ-ONLY with the
# last lines of its logs. Ends with suggestions of what to do next.
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
from kvmops.cmd import read
from kvmops.errors import LibvirtError
from kvmops.guests import lifecycle
from kvmops.guests.inventory import lv_path
from kvmops.guests.xml import read_domain
from kvmops.plan import Plan

host = nb.open_host(site, apply)
findings: list[str] = []  # what the steps below saw; the suggestions at the end use it

# %% [markdown]
# ## 1. State from libvirt
#
# *If this step fails:* the guest is not defined (check the name with `inventory`; a guest
# that was removed cannot be reached), or libvirt does not answer (is libvirtd running?
# `systemctl status libvirtd` on the host).

# %%
with nb.step("Read the guest's state", if_fails="check the name with inventory; is libvirtd running?"):
    info = host.virt.info(guest)
    facts = read_domain(info.xml)
    ours = {s: p.split("/", 1)[1] for s in facts.disk_sources if (p := lv_path(s)) and p.startswith(host.site.vg + "/")}
    lvm = nb.read(host).lvm if ours else None
    rows = []
    for source in facts.disk_sources:
        if lvm is None or source not in ours:
            rows.append((source, "not an LV of the site's VG"))
        elif lvm.get(ours[source]) is None:
            rows.append((source, "LV MISSING"))
            findings.append(f"its disk {source} does not exist: the guest cannot start")
        else:
            rows.append((source, "LV present"))
    nb.table([(info.name, info.state, "on" if info.autostart else "off", ", ".join(facts.bridges) or "-")],
             ["guest", "state", "autostart", "bridges"])
    nb.table(rows, ["disk", "status"])
    findings.append(f"state: {info.state}")

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
    if not info.active:
        print(f"guest {guest} is {info.state}: no console to read")
    elif not seconds:
        print("console reading skipped (seconds=0)")
    else:
        try:
            text = lifecycle.read_console(host, guest, seconds, print)
            said = text.strip().splitlines()
            print(f"({len(said)} lines in {seconds:g} s)" if said else f"(nothing printed in {seconds:g} s)")
            findings.append("console: " + (f"printed: {said[-1]}" if said else "silent"))
        except LibvirtError as exc:
            nb.note(f"NOTE: the console cannot be read from here: {exc}")
            print(lifecycle.console_hint(host, guest))
            findings.append("console: not readable from here")

# %% [markdown]
# ## 3. The serial log
#
# A domain with `<log file=.../>` in its `<serial>` element keeps everything its console
# printed in that file on the host, also from before this incident.

# %%
with nb.step("Read the serial log", if_fails="read the file on the host with `tail`"):
    if not facts.serial_log:
        print(f"guest {guest} has no serial log file configured (add <log file='/var/log/libvirt/qemu/"
              f"{guest}-serial.log' append='on'/> to its <serial> element to keep one)")
    elif host.site.replay:
        print(f"serial log {facts.serial_log}: not read (site {host.site.name} replays recorded facts)")
    else:
        res = host.run(read("tail", "-n", str(lines), "--", facts.serial_log, ok=(0, 1)))
        print(res.stdout.rstrip() or f"(cannot read {facts.serial_log}: {res.stderr.strip() or 'empty'})")
        if res.stdout.strip():
            findings.append(f"serial log ends with: {res.stdout.strip().splitlines()[-1]}")

# %% [markdown]
# ## 4. Force it off (only with `destroy=True`)
#
# A hung guest's disk can only be inspected once it is off. `destroy` pulls the plug: data
# the guest has not written yet is lost. Needs `apply=True` and `confirm` = the guest's name.
#
# *If this step fails:* read libvirt's message; the guest is still in the state shown above.

# %%
with nb.step("Force the guest off", if_fails="read libvirt's message; nothing else was changed"):
    if destroy:
        plan = lifecycle.destroy(nb.read(host), guest)
        nb.show_plan(plan)
        with nb.locked(host, guest, "guest-unreachable destroy"):
            nb.execute(host, plan, confirm)
    else:
        plan = Plan(f"destroy guest {guest}").noop("not asked for (destroy=False)")
        print("not forced off (destroy=False)")
    off = not host.virt.info(guest).active

# %% [markdown]
# ## 5. Its disk, read-only
#
# Only when the guest is off: its system disk is mapped read-only, the root mounted `-o ro`,
# and os-release, fstab, the last lines of its logs and `df` shown (see `guest-inspect`);
# everything is unmounted and unmapped again, also after a failure.
#
# *If this step fails:* see `guest-inspect`; nothing was left mapped or mounted.

# %%
with nb.step("Inspect the disk", if_fails="run guest-inspect for the details; nothing was changed"):
    report = None
    first = facts.disk_sources[0] if facts.disk_sources else None
    disk_lv = lv_path(first)
    target = {"lv": disk_lv} if disk_lv else {"image": first}
    if first is None:
        print(f"guest {guest} has no disk")
    elif not off and not destroy:
        print(f"not inspected: guest {guest} is {info.state} (its disk is in use); set destroy=True "
              "to force it off first, or shut it down")
    elif not off:
        from kvmops.images import inspect

        nb.show_plan(inspect.preview(vg=disk_lv.split("/")[0] if disk_lv else None,
                                     lv=disk_lv.split("/")[1] if disk_lv else None,
                                     image=None if disk_lv else first, lines=lines))
        print("planned after the destroy (plan only: the guest still runs)")
    else:
        with nb.locked(host, guest, "guest-unreachable", reading=True):
            report = nb.inspect_disk(host, nb.read(host), lines=lines, **target)
    if report is not None:
        findings.append(f"disk: {report.os_name}, root {report.root}")
        findings += [f"disk: {n}" for n in report.notes]

# %% [markdown]
# ## What next
#
# Suggestions from what was found above.

# %%
with nb.step("Suggest what to do next"):
    now = host.virt.info(guest)
    tips = []
    if any("MISSING" in f or "does not exist" in f for f in findings):
        tips.append("a disk LV is missing: restore it (lv-restore from a snapshot, or from a backup) "
                    "before starting the guest; `inventory` shows the LVs")
    if now.state in ("shut off", "shutoff", "crashed"):
        tips.append(f"start it and watch it boot: guest-lifecycle guest={guest} action=start seconds=120")
        if not now.autostart:
            tips.append("autostart is off: it will not come back after a host reboot "
                        "(guest-lifecycle action=autostart)")
    elif now.state == "paused":
        tips.append(f"it is paused (often: the host's VG or disk was full): free space, then `virsh resume {guest}`")
    elif now.active:
        tips.append("it runs: if the console shows a login prompt, the problem is the network: check its "
                    "bridge with `inventory`/`host-network`, its address (`image-tweak` with address=...) "
                    "and the VLAN on the uplink")
        tips.append("no console output: the image may have no getty on ttyS0 (image-tweak console=True "
                    "while it is shut off), or it hangs: destroy=True with apply and confirm, then read its disk")
    tips.append("the guest's logs on its disk (above) often name the cause: a full filesystem (df), "
                "a wrong fstab entry (emergency mode), fsck errors, an OOM kill")
    for f in findings:
        print(f"seen: {f}")
    nb.note("**Next:**\n" + "\n".join(f"- {t}" for t in tips))
host.close()
