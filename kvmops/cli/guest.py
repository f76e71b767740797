"""``kvmops guest``: the guide's guest tasks (3.2, 4.1). Changing ones plan first, act with --apply."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from kvmops import guestlive
from kvmops.cli.common import command, facts_of, host_of, option, plan_and_apply, show_and_apply, site_of
from kvmops.errors import InvalidInput
from kvmops.guests import lifecycle
from kvmops.guests.spec import GuestSpec, guest_spec
from kvmops.guests.xml import render_domain_xml
from kvmops.host import Host
from kvmops.plan import Plan
from kvmops.site import Site


def _seconds(zero: bool) -> Callable[[str], float]:
    """An argparse type: seconds, checked before anything is read (argparse exits 2)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        try:
            return lifecycle.seconds(value, "", zero=zero)
        except InvalidInput as exc:
            raise argparse.ArgumentTypeError(str(exc).strip()) from None

    return parse


def _spec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="guest name, e.g. test1")
    p.add_argument("--memory", default="2g", help="e.g. 2g, 2048m, 4GiB (default 2g)")
    p.add_argument("--vcpus", type=int, default=2, help="number of vCPUs (default 2)")
    p.add_argument("--vlan", type=int, action="append", default=[], help="a VLAN of the site (repeatable)")
    p.add_argument("--bridge", action="append", default=[], help="a bridge of the site (repeatable)")
    p.add_argument("--disk-lv", help="system disk LV (default: the site's prefix + name, e.g. vmtest1)")
    p.add_argument("--data-lv", action="append", default=[], help="extra data disk LV (repeatable)")
    p.add_argument("--cdrom", help="ISO image on the host, e.g. the NoCloud seed")


def _spec(site: Site, args: argparse.Namespace) -> GuestSpec:
    return guest_spec(site, args.name, memory=args.memory, vcpus=args.vcpus, vlans=args.vlan,
                      bridges=args.bridge, data_lvs=args.data_lv, disk_lv=args.disk_lv, cdrom=args.cdrom)


NAME = option("name", help="guest name")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser("guest", help="libvirt guests (guide 3.2, 4.1)")
    cmds = g.add_subparsers(dest="guest_cmd", required=True)
    command(cmds, "list", "every guest with state and autostart (virsh list --all)", cmd_list)
    command(cmds, "xml", "print the domain XML for review (like virt-install --print-xml)", cmd_xml, _spec_options)
    command(cmds, "define", "write <xml_dir>/NAME.xml and virsh define it", cmd_define, _spec_options,
            effect="destroys")
    command(cmds, "start", "virsh start NAME", cmd_start, NAME,
            option("--console", type=_seconds(zero=True), default=0, metavar="SECONDS",
                   help="then show the serial console for SECONDS"), effect="changes")
    command(cmds, "autostart", "virsh autostart [--disable] NAME", cmd_autostart, NAME,
            option("--disable", action="store_true", help="turn autostart off"), effect="changes")
    command(cmds, "console", "attach to the serial console like virsh console (CTRL-] detaches)", cmd_console, NAME,
            option("--seconds", type=_seconds(zero=True), default=0,
                   help="instead of attaching, only read the console for SECONDS"))
    command(cmds, "seed-done", "after a verified boot: eject the NoCloud seed, drop it from the definition and "
            "remove the ISO (it holds password hashes)", cmd_seed_done, NAME, effect="changes")
    command(cmds, "shutdown", "virsh shutdown NAME and wait for it", cmd_shutdown, NAME,
            option("--timeout", type=_seconds(zero=False), default=lifecycle.DEFAULT_SHUTDOWN_TIMEOUT,
                   help="seconds to wait for power-off (default %(default)s)"), effect="changes")
    command(cmds, "destroy", "virsh destroy NAME (force off; needs --confirm NAME)", cmd_destroy, NAME,
            effect="destroys")
    command(cmds, "undefine", "virsh undefine NAME (disks stay; needs --confirm NAME)", cmd_undefine, NAME,
            effect="destroys")
    command(cmds, "info", "virsh guestinfo NAME (needs the QEMU guest agent)", cmd_info, NAME)


def cmd_list(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        rows = [("NAME", "STATE", "AUTOSTART")]
        rows += [(d.name, d.state, "yes" if d.autostart else "no") for d in facts_of(host).domains]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_xml(args: argparse.Namespace) -> int:
    site = site_of(args)
    print(render_domain_xml(site, _spec(site, args)), end="")
    return 0


def cmd_define(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        return show_and_apply(host, _define(host, args), args)


def _define(host: Host, args: argparse.Namespace) -> Plan:
    spec = _spec(host.site, args)
    return lifecycle.define(facts_of(host, lifecycle.define_wanted(host.site, spec)), spec)


def cmd_start(args: argparse.Namespace) -> int:
    return plan_and_apply(args, lambda facts: lifecycle.start(facts, args.name, console_seconds=args.console))


def cmd_autostart(args: argparse.Namespace) -> int:
    return plan_and_apply(args, lambda facts: lifecycle.autostart(facts, args.name, not args.disable))


def cmd_console(args: argparse.Namespace) -> int:
    from kvmops.cli import console

    with host_of(args) as host:
        if args.seconds > 0:
            guestlive.read_console(host, args.name, args.seconds, print)
            return 0
        try:
            console.attach(host, args.name)
        except console.NoTerminal as exc:
            print(f"{exc}; from a terminal run this command again, or attach from a shell with:\n"
                  f"{guestlive.console_hint(host, args.name)}")
    return 0


def cmd_seed_done(args: argparse.Namespace) -> int:
    from kvmops.procedures import guest_seed  # the images' code (yaml, pycdlib): only here

    with host_of(args) as host:
        wanted = guest_seed.wanted(host.site, args.name)
        facts = facts_of(host, wanted)
        show_and_apply(host, guest_seed.plan(facts, args.name), args, facts)
        if not host.apply:
            return 0
        verdict = guest_seed.verify(facts_of(host, wanted), args.name)
        print(verdict.render())
        return 0 if verdict.ok else 1


def cmd_shutdown(args: argparse.Namespace) -> int:
    return plan_and_apply(args, lambda facts: lifecycle.shutdown(facts, args.name, timeout=args.timeout))


def cmd_destroy(args: argparse.Namespace) -> int:
    return plan_and_apply(args, lambda facts: lifecycle.destroy(facts, args.name))


def cmd_undefine(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        facts = facts_of(host, lifecycle.undefine_wanted(host.site, args.name))
        return show_and_apply(host, lifecycle.undefine(facts, args.name), args, facts)


def cmd_info(args: argparse.Namespace) -> int:
    with host_of(args) as host:
        info = guestlive.guest_info(host, args.name)
    for key in sorted(info):
        print(f"{key:<28} {info[key]}")
    return 0
