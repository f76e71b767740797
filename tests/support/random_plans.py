"""Random runs for the gate properties: plans made of known changing steps chosen from a
random world (:mod:`tests.support.random_facts`), with and without their confirm targets.

A run is one to three plans (the phases of one procedure), each of one to five steps; now and
then a phase holds a disk (an LV mapped for writing or reading, as a phase with a
:class:`~kvmops.executor.Hold`) and its steps change what is inside it. The steps: LVM
(create, snapshot, grow, shrink, remove, rename, merge, resume a merge's polling, wait for a
merge), data written onto LVs (``dd``, ``qemu-img convert``), libvirt calls (define with a
clean or hostile XML, start, destroy, shutdown, undefine, autostart, blockresize),
NetworkManager changes of bridges, files written, retired, removed, folders made, partition
and filesystem tools, and a few commands no rule knows. Names come mostly from the world (its
LVs, snapshots, guests, bridge profiles), sometimes new or wrong ones.
"""

from __future__ import annotations

from collections.abc import Callable

from kvmops.cmd import change
from kvmops.guests import hostfile
from kvmops.images.imagefs import PLACEHOLDER
from kvmops.images.partitions import lv_mapper_path
from kvmops.plan import Call, MergeDone, Plan, Step, Wait
from kvmops.units import lvm_size
from tests.support.gate_vs_oracle import Run
from tests.support.random_facts import (
    GUEST_LVS,
    GUESTS,
    HOST_LVS,
    IMAGE,
    NEW_GUESTS,
    OTHER_VG,
    SITE,
    VG_NAME,
    Dice,
    World,
)

GiB = 1 << 30
Maker = Callable[[World, Dice], Step]


# -- names -----------------------------------------------------------------------------------


def lv(world: World, d: Dice) -> str:
    """Mostly an LV of the world's VG (guest LVs, snapshots), sometimes a new, host or bad one."""
    have = [x.name for x in world.facts.lvm.lvs if x.vg == VG_NAME and world.guest_lv(x.name)]
    kind = d.pick(("world", "world", "world", "world", "disk", "pool", "host", "new"))
    if kind == "disk":
        named = sorted({n for lvs in world.disks_of.values() for n in lvs})
        return d.pick(named) if named else d.pick(GUEST_LVS)
    if kind == "world" and have:
        return d.pick(have)
    return d.pick({"host": HOST_LVS, "new": ("vmnew1", "vmweb9")}.get(kind, GUEST_LVS))


def snapshot(world: World, d: Dice) -> str:
    """Mostly a snapshot of the world, a valid one more often."""
    snaps = [x.name for x in world.facts.lvm.lvs if x.vg == VG_NAME and x.is_snapshot]
    valid = [x.name for x in world.facts.lvm.lvs if x.vg == VG_NAME and x.is_snapshot and not x.invalid
             and not x.merging]
    if valid and d.maybe(1, 2):
        return d.pick(valid)
    return d.pick(snaps) if snaps and d.maybe(4, 5) else lv(world, d)


def lv_path(world: World, d: Dice) -> str:
    name = lv(world, d)
    return f"{VG_NAME}/{name}" if d.maybe(9, 10) else f"{OTHER_VG}/{name}"


def guest(world: World, d: Dice) -> str:
    which = d.pick(("world", "world", "world", "off", "on", "new", "any"))
    off = sorted(g for g, on in world.domains.items() if not on)
    on = sorted(g for g, on in world.domains.items() if on)
    pools = {"world": sorted(world.domains), "off": off, "on": on, "new": list(NEW_GUESTS)}
    return d.pick(pools.get(which) or list(GUESTS))


def target(d: Dice, right: str) -> str | None:
    """The confirm target: mostly the right one, sometimes none or another."""
    return d.pick((right, right, right, right, None, right + "x"))


def _change(reason: str, *argv: str, stdin: str | None = None, tgt: str | None = None) -> Step:
    return Step(reason, change(*argv, stdin=stdin), tgt)


# -- LVM -------------------------------------------------------------------------------------


def lvcreate(world: World, d: Dice) -> Step:
    name = d.pick(("vmnew1", "vmweb9", "vmnew1-data")) if d.maybe(1, 2) else lv(world, d)
    return _change("create", "lvcreate", "--name", name, "--size", d.pick(("10g", "1g")), "--wipesignatures", "y",
                   "--yes", d.pick((VG_NAME, VG_NAME, VG_NAME, OTHER_VG)))


def lvsnapshot(world: World, d: Dice) -> Step:
    origin = lv_path(world, d)
    return _change("snapshot", "lvcreate", "--snapshot", "--name", f"{origin.split('/')[1]}-20261130T0815Z",
                   "--size", "5g", origin)


def _size_of(world: World, path: str) -> int:
    have = world.facts.lvm.get(path.split("/", 1)[1]) if path.startswith(VG_NAME + "/") else None
    return have.size if have is not None else 10 * GiB


def lvgrow(world: World, d: Dice) -> Step:
    path = lv_path(world, d)
    return _change("grow", "lvresize", "--size", lvm_size(_size_of(world, path) + d.pick((1, 5)) * GiB), path)


def grow_running(world: World, d: Dice) -> list[Step]:
    """The disk of a running guest grown, mostly with ``virsh blockresize`` for that guest."""
    users = sorted((g, lv) for g, lvs in world.disks_of.items() if world.domains.get(g) for lv in lvs
                   if world.facts.lvm.get(lv))
    if not users:
        return [lvgrow(world, d)]
    name, disk = d.pick(users)
    path = f"{VG_NAME}/{disk}"
    grow = _change("grow", "lvresize", "--size", lvm_size(_size_of(world, path) + GiB), path)
    tell = Step("tell", Call("blockresize", d.pick((name, name, name, guest(world, d))), device="vda",
                             size=_size_of(world, path) + GiB))
    return [grow, tell] if d.maybe(2, 3) else [grow]


def lvshrink(world: World, d: Dice) -> Step:
    path = lv_path(world, d)
    size = max(_size_of(world, path) // 2, GiB)
    return _change("shrink", "lvresize", "--size", lvm_size(size), path, stdin="y\n", tgt=target(d, path))


def lvremove(world: World, d: Dice) -> Step:
    path = lv_path(world, d) if d.maybe(1, 3) else f"{VG_NAME}/{snapshot(world, d)}"
    argv = d.pick((("lvremove", path), ("lvremove", path), ("lvremove", path), ("lvremove", "-y", path),
                   ("lvremove", "--force", path), ("lvremove", path, f"{VG_NAME}/{lv(world, d)}"),
                   ("lvremove", VG_NAME)))
    return _change("remove", *argv, stdin="y\n", tgt=target(d, path))


def lvrename(world: World, d: Dice) -> Step:
    return _change("rename", "lvrename", d.pick((VG_NAME, VG_NAME, OTHER_VG)), lv(world, d),
                   d.pick(("vmnew1", "vmweb9")) if d.maybe(2, 3) else lv(world, d))


def lvmerge(world: World, d: Dice) -> Step:
    path = f"{VG_NAME}/{snapshot(world, d)}"
    return _change("merge", "lvconvert", "--mergesnapshot", path, "--interval", "10", tgt=target(d, path))


def lvpoll(world: World, d: Dice) -> Step:
    return _change("poll", "lvchange", "--poll", "y", lv_path(world, d))


def merge_wait(world: World, d: Dice) -> Step:
    snap = snapshot(world, d)
    have = world.facts.lvm.get(snap)
    origin = have.origin if have is not None and have.origin else lv(world, d)
    return Step("wait", Wait(f"poll until {snap} is gone", MergeDone(VG_NAME, snap, origin)))


def overwrite(world: World, d: Dice) -> Step:
    name = lv(world, d)
    dev = d.pick((f"/dev/{VG_NAME}/{name}", f"/dev/{VG_NAME}/{name}", lv_mapper_path(VG_NAME, name), "/dev/sda",
                  f"/dev/{OTHER_VG}/{name}"))
    right = f"{VG_NAME}/{name}" if not dev.startswith(("/dev/sda", f"/dev/{OTHER_VG}")) else dev
    if d.maybe(1, 2):
        return _change("dd", "dd", "if=/dev/zero", f"of={dev}", "bs=4M", "count=1", "conv=fsync",
                       tgt=target(d, right))
    return _change("copy", "qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", IMAGE, dev, tgt=target(d, right))


# -- libvirt ---------------------------------------------------------------------------------


def define(world: World, d: Dice) -> Step:
    """A definition of a guest, now and then one whose own LV another guest has as a disk."""
    taken = sorted(g for g in GUESTS if any(f"{SITE.lv_prefix}{g}" in lvs for o, lvs in world.disks_of.items()
                                            if o != g))
    name = d.pick(taken) if taken and d.maybe(1, 4) else guest(world, d)
    made = world.definition(name, d)
    return Step("define", Call("define", name, f"virsh define {hostfile.xml_path(SITE, name)}", xml=made.xml),
                target(d, name))


def lifecycle(world: World, d: Dice) -> Step:
    name = guest(world, d)
    verb = d.pick(("start", "start", "start", "destroy", "shutdown", "undefine", "autostart", "blockresize"))
    if verb == "blockresize":
        return Step("tell", Call("blockresize", name, device="vda", size=20 * GiB))
    return Step(verb, Call(verb, name), target(d, name) if verb in ("destroy", "undefine") else None)


# -- NetworkManager, files, disk tools, unknown ------------------------------------------------


def nmcli(world: World, d: Dice) -> Step:
    profiles = world.facts.net.profiles
    uuid = d.pick(profiles).uuid if profiles else "uuid-none"
    bridge = d.pick(("virbr1.2368", "virbr1.99", "br0"))
    argv = d.pick((("nmcli", "connection", "delete", "uuid", uuid), ("nmcli", "connection", "up", "uuid", uuid),
                   ("nmcli", "connection", "modify", "uuid", uuid, "bridge.ageing-time", "0"),
                   ("nmcli", "device", "reapply", bridge),
                   ("nmcli", "connection", "add", "type", "bridge", "ifname", bridge, "con-name", bridge)))
    prof = next((p for p in profiles if p.uuid == uuid), None)
    right = prof.interface_name if prof is not None and prof.type == "bridge" else (prof.master if prof else bridge)
    return Step("net", change(*argv), target(d, right or bridge) if argv[2] == "delete" else None)


def files(world: World, d: Dice) -> Step:
    name = guest(world, d)
    kept = hostfile.xml_path(SITE, name)
    path = d.pick((kept, kept, f"{SITE.seed_dir}/{name}-seed.iso", "/etc/cron.d/kvmops", f"{SITE.xml_dir}/../x",
                   f"{SITE.boot_dir}/{name}-vmlinuz"))
    kind = d.pick(("install", "install", "null", "openssl", "mv", "rm", "mkdir"))
    if kind == "install":
        text = world.definition(name, d).xml if d.maybe(1, 2) else (world.facts.files.get(kept) or "")
        return _change("write", "install", "-D", "-m", "0600", "/dev/stdin", path, stdin=text, tgt=target(d, name))
    argv = {"null": ("install", "-D", "-m", "0600", "/dev/null", path),
            "openssl": ("openssl", "base64", "-d", "-A", "-out", path),
            "mv": ("mv", "--backup=numbered", "--", path, path + hostfile.UNDEFINED_SUFFIX),
            "rm": ("rm", "-f", path), "mkdir": ("mkdir", "-p", path.rsplit("/", 1)[0])}[kind]
    return _change(kind, *argv, stdin="AAAA" if kind == "openssl" else None)


def disk_tool(world: World, d: Dice) -> Step:
    dev = lv_mapper_path(VG_NAME, lv(world, d))
    argv = d.pick((("sfdisk", "--no-reread", dev), ("resize2fs", dev + "p1"), ("growpart", dev, "1"),
                   ("chroot", PLACEHOLDER, "/usr/sbin/grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"),
                   ("e2fsck", "-f", "-y", dev + "1")))
    return _change("inside", *argv, stdin="," if argv[0] == "sfdisk" else None)


def unknown(world: World, d: Dice) -> Step:
    name = lv(world, d)
    argv = d.pick((("wipefs", "-a", f"/dev/{VG_NAME}/{name}"), ("vgremove", VG_NAME), ("sh", "-c", "true"),
                   ("lvconvert", "--type", "raid1", f"{VG_NAME}/{name}")))
    return _change("unknown", *argv)


MAKERS: tuple[Maker, ...] = (lvcreate, lvsnapshot, lvgrow, lvgrow, lvshrink, lvremove, lvrename, lvmerge, lvpoll,
                             merge_wait, overwrite, define, define, define, lifecycle, lifecycle, lifecycle,
                             lifecycle, nmcli, files, disk_tool, unknown)


def new_guest(world: World, d: Dice) -> list[Step]:
    """A guest made by the run: its LV created, defined (clean or hostile), started, and then
    (in the later steps) perhaps its LV changed."""
    name = d.pick(NEW_GUESTS)
    own = f"{SITE.lv_prefix}{name}"
    made = world.definition(name, d)
    return [_change("create", "lvcreate", "--name", own, "--size", "10g", "--wipesignatures", "y", "--yes", VG_NAME),
            Step("define", Call("define", name, f"virsh define {hostfile.xml_path(SITE, name)}", xml=made.xml)),
            *([Step("start", Call("start", name))] if d.maybe(2, 3) else [])]


def run(world: World, d: Dice) -> Run:
    """A random run of one to three plans on ``world`` (a third of them one short plan)."""
    plans, holds = [], []
    short = d.maybe(1, 3)
    for i in range(1 if short else d.pick((1, 2, 2, 3))):
        steps = [d.pick(MAKERS)(world, d) for _ in range(d.pick((1, 1, 2) if short else (1, 2, 3, 4)))]
        if i == 0 and d.maybe(1, 6):
            steps = [*new_guest(world, d), *steps]
        if d.maybe(1, 6):
            steps = [*grow_running(world, d), *steps]
        hold = (f"{VG_NAME}/{lv(world, d)}", d.maybe(3, 4)) if d.maybe(1, 6) else None
        if hold is not None:
            steps = [disk_tool_on(hold[0], d), *steps[: 2]]
        plans.append(Plan(f"random plan {i}", steps))
        holds.append(hold)
    return Run(tuple(plans), tuple(holds), "random")


def disk_tool_on(source: str, d: Dice) -> Step:
    dev = lv_mapper_path(VG_NAME, source.split("/", 1)[1])
    argv = d.pick((("sfdisk", "--no-reread", dev), ("resize2fs", dev + "p1"), ("growpart", dev, "1"),
                   ("chroot", PLACEHOLDER, "/usr/sbin/grub2-mkconfig", "-o", "/boot/grub2/grub.cfg")))
    return _change("inside", *argv, stdin="," if argv[0] == "sfdisk" else None)
