"""``kvmops image``: cloud images onto guest LVs, offline tweaks, growing, NoCloud seeds.

Passwords are never taken as clear text on the command line (``ps`` shows argv): give a
``$6$`` hash, or ``--ask-password`` to type it (hashed here, never shown).
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from kvmops import guards
from kvmops.cli.common import command, facts_of, host_of, option, show_and_apply
from kvmops.errors import InvalidInput
from kvmops.executor import Executor, confirmed
from kvmops.facts import grow as grow_facts
from kvmops.host import Host
from kvmops.hostfacts import Wanted
from kvmops.images import content, copy, grow, nocloud, tweaks
from kvmops.images.passwords import Password
from kvmops.procedures import disks
from kvmops.progress import printer
from kvmops.site import gateway_for
from kvmops.units import human


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    img = sub.add_parser("image", help="cloud images: copy, tweak, grow, NoCloud seed (guide 3, 4.3)")
    cmds = img.add_subparsers(dest="image_cmd", required=True)
    command(cmds, "info", "qemu-img info: format and virtual size", cmd_info, option("path"))
    command(cmds, "copy", "copy a raw/qcow2 image onto a guest LV (needs --confirm VG/LV)", cmd_copy, _copy_options,
            effect="destroys")
    command(cmds, "tweak", "offline tweaks in a chroot (guide 3.3)", cmd_tweak, _tweak_options, effect="changes")
    command(cmds, "grow", "grow the root partition and filesystem (guest shut off)", cmd_grow, _grow_options,
            effect="changes")
    command(cmds, "seed", "write a NoCloud seed ISO (cloud-init) for a guest's CD-ROM", cmd_seed, _seed_options,
            effect="changes")


def _copy_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image")
    p.add_argument("lv", help="guest LV name, e.g. vmtest1")
    p.add_argument("--method", choices=copy.METHODS, default="auto",
                   help="auto (default): qemu-img convert -W (fastest on every image measured); dd: raw only")
    p.add_argument("--no-verify", action="store_true", help="skip qemu-img compare afterwards")


def _tweak_options(p: argparse.ArgumentParser) -> None:
    _source(p)
    p.add_argument("--user", help="the login user (default: the site's, e.g. centos)")
    p.add_argument("--key", action="append", default=[], metavar="FILE.pub", help="authorized key (repeatable)")
    p.add_argument("--root-key", action="append", default=[], metavar="FILE.pub",
                   help="authorized key for root (repeatable)")
    p.add_argument("--password-hash", help="$6$ hash for the login user")
    p.add_argument("--root-password-hash", help="$6$ hash for root")
    p.add_argument("--ask-password", action="store_true", help="type the login user's password")
    p.add_argument("--ask-root-password", action="store_true", help="type root's password")
    p.add_argument("--sudo", action="store_true", help="/etc/sudoers.d/USER NOPASSWD (440 root:root)")
    p.add_argument("--serial", action="store_true", help="serial-getty@ttyS0 link and GRUB/kernel console")


def _grow_options(p: argparse.ArgumentParser) -> None:
    _source(p, required=False)
    p.add_argument("--inside", action="store_true", help="only print the commands to run inside the guest")
    p.add_argument("--disk", default="/dev/vda")
    p.add_argument("--part", type=int, default=1)
    p.add_argument("--fs", default="xfs")


def _seed_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("guest")
    p.add_argument("--out", help="ISO path on the host (default: XML_DIR/GUEST-seed.iso)")
    p.add_argument("--user")
    p.add_argument("--key", action="append", default=[], metavar="FILE.pub")
    p.add_argument("--root-key", action="append", default=[], metavar="FILE.pub", help="authorized key for root")
    p.add_argument("--password-hash")
    p.add_argument("--root-password-hash")
    p.add_argument("--ip", help="static address with prefix, e.g. 10.5.68.237/24")
    p.add_argument("--gateway")
    p.add_argument("--dns", action="append", default=[])
    p.add_argument("--mac", help="the NIC's MAC: the network-config matches it (default: the guest's first NIC's, "
                                 "when it is defined)")


def _source(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--image", help="an image file (attached with losetup + partx)")
    g.add_argument("--lv", help="a guest LV name (mapped with kpartx), e.g. vmtest1")


def _keys(what: str, files: list[str]) -> tuple[str, ...]:
    """The public keys in ``files`` (``#`` comment lines skipped), each validated."""
    lines = []
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise InvalidInput(f"key file {f} does not exist")
        lines += [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return content.parse_keys(what, "\n".join(lines))


def _password(user: str, hashed: str | None, ask: bool) -> Password | None:
    if hashed:
        return Password.hashed(user, hashed)
    if ask:
        first = getpass.getpass(f"new password for {user}: ")
        if first != getpass.getpass("again: "):
            raise InvalidInput("the two passwords differ: nothing was changed")
        return Password.clear(user, first)
    return None


def cmd_info(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        info = facts_of(host, Wanted(images=(args.path,))).image(args.path)  # probed by the facts read
    print(f"{info.path}: {info.format}, virtual size {human(info.virtual_size)} ({info.virtual_size} bytes)"
          + (f", backing file {info.backing}" if info.backing else ""))
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        facts = facts_of(host, Wanted(images=(args.image,)))
        info = facts.image(args.image)
        plan = copy.copy_plan(facts, args.lv, info, verify=not args.no_verify, method=args.method)
        print(plan.render())
        lines = Executor(host, printer("  ")).execute(plan, confirmed(args.confirm))
        if not host.apply:
            print("\n(plan only: nothing was changed; add --apply --confirm VG/LV to run it)")
            return 0
        for line in lines:
            print(line)
    return 0


def _lv(args: argparse.Namespace, host: Host) -> str | None:
    """``VG/LV`` of ``--lv``; a host LV (root, home, ...) is refused before any command."""
    if not args.lv:
        return None
    guards.not_host_lv(args.lv, host.site.lv_prefix)
    return f"{host.site.vg}/{args.lv}"


def cmd_tweak(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        user = args.user or host.site.login_user
        todo = tweaks.build(user, password=_password(user, args.password_hash, args.ask_password),
                            root_password=_password("root", args.root_password_hash, args.ask_root_password),
                            keys=_keys("--key", args.key), root_keys=_keys("--root-key", args.root_key),
                            sudo=args.sudo, getty=args.serial, grub=args.serial)
        if len(todo) == 1:  # the SELinux relabel alone
            raise InvalidInput("no tweak chosen: use --key, --root-key, --password-hash, --sudo, --serial, ...")
        lv = _lv(args, host)
        report = disks.tweak_image(host, facts_of(host), todo, image=args.image, lv=lv)
        print(report.render())
        if not host.apply:
            print("\n(plan only: the image was only read; add --apply to change it)")
    return 0


def cmd_grow(args: argparse.Namespace) -> int:
    if args.inside:
        print(grow.guest_grow_plan(args.disk, args.part, args.fs).render())
        return 0
    if not (args.image or args.lv):
        raise InvalidInput("give --image PATH or --lv NAME (or --inside for the in-guest commands)")
    with host_of(args) as host:
        lv = _lv(args, host)
        seen = grow_facts.look(host.runner, facts_of(host), image=args.image, lv=lv)
        for plan in grow.preview(seen):
            print(plan.render() + "\n")
        if not host.apply:
            print("(plan only: the disk was only read; add --apply to grow it)")
            return 0
        for plan in disks.grow(host, facts_of(host), image=args.image, lv=lv, progress=printer("  ")):
            print(f"done: {plan.title}" + "".join(f"\n  note: {n}" for n in plan.notes))
    return 0


def _first_mac(host: Host, guest: str) -> str | None:
    """The MAC of the guest's first NIC, when it is defined and has one."""
    from kvmops.guests.xml import read_domain

    info = facts_of(host).domain(guest)
    found = read_domain(info.inactive_xml or info.xml).macs if info else ()
    return found[0] if found and found[0] else None


def cmd_seed(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        user = args.user or host.site.login_user
        users = nocloud.users_for(
            user, _keys("--key", args.key),
            Password.hashed(user, args.password_hash) if args.password_hash else None,
            Password.hashed("root", args.root_password_hash) if args.root_password_hash else None,
            _keys("--root-key", args.root_key),
        )
        nets: tuple[nocloud.StaticNet, ...] = ()
        if args.ip:
            gw = args.gateway or str(gateway_for(host.site, args.ip))
            mac = args.mac or _first_mac(host, args.guest)
            nets = (nocloud.StaticNet(args.ip, gw, tuple(args.dns or [str(d) for d in host.site.dns]),
                                      interface="nic1" if mac else "eth0", mac=mac),)
        seed = nocloud.Seed(args.guest, users, nets)
        out = args.out or nocloud.seed_path(host.site, args.guest)
        return show_and_apply(host, nocloud.seed_plan(seed, out), args)

