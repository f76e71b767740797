"""Options and helpers shared by the command groups."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kvmops.site import SITE_ENV, resolve_site

if TYPE_CHECKING:  # imported where used: `kvmops plan` and `kvmops --help` read no host
    from kvmops.host import Host
    from kvmops.hostfacts import HostFacts, Wanted
    from kvmops.plan import Plan
    from kvmops.site import Site

CLI_DEFAULT_SITE = "guide"
"""The CLI acts on the host it runs on (the guide's host: local commands, ``qemu:///system``)
unless told otherwise; runbooks default to the plan-only demo instead (kvmops.site)."""

SITE_HELP = (f"a shipped site (guide, demo) or a site TOML file; default: ${SITE_ENV}, else "
             f"{CLI_DEFAULT_SITE}: this KVM host. demo plans against recorded facts, changes nothing")


def add_site(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", metavar="SITE", help=SITE_HELP)


def add_apply(p: argparse.ArgumentParser, *, destructive: bool = False) -> None:
    add_site(p)
    p.add_argument("--apply", action="store_true", help="execute the plan (default: only show it)")
    if destructive:
        p.add_argument("--confirm", metavar="TARGET", help="the exact target, e.g. rl_build/vmtest1")


Arguments = Callable[[argparse.ArgumentParser], object]
"""Adds a command's own arguments to its parser (:func:`option`, or a function adding several)."""

Effect = Literal["reads", "changes", "destroys"]
"""What a command does to the host: only reads it (--site), changes it (--site, --apply), or
destroys something (--site, --apply, --confirm TARGET)."""


def option(*flags: str, **settings: Any) -> Arguments:
    """One argument of a command, as ``argparse`` takes it: ``option("--size", required=True)``."""
    return lambda p: p.add_argument(*flags, **settings)


def command(cmds: argparse._SubParsersAction[argparse.ArgumentParser], name: str, helptext: str,
            func: Callable[[argparse.Namespace], int], *arguments: Arguments, effect: Effect = "reads") -> None:
    """The subcommand ``name`` running ``func``: its own arguments in the order given, then the
    options its ``effect`` needs (after them, so that ``--help`` lists them last)."""
    p = cmds.add_parser(name, help=helptext)
    for add in arguments:
        add(p)
    if effect == "reads":
        add_site(p)
    else:
        add_apply(p, destructive=effect == "destroys")
    p.set_defaults(func=func)


def site_path(args: argparse.Namespace) -> Path:
    """The site file of ``--site``, resolved as for runbooks, with the CLI's own default."""
    return resolve_site(getattr(args, "site", None), default=CLI_DEFAULT_SITE)


def site_of(args: argparse.Namespace) -> Site:
    from kvmops.site import load_site

    return load_site(site_path(args))


@contextmanager
def host_of(args: argparse.Namespace) -> Iterator[Host]:
    """A connected Host (plan-only unless --apply), closed afterwards."""
    from kvmops.host import connect

    host = connect(site_of(args), apply=bool(getattr(args, "apply", False)))
    try:
        yield host
    finally:
        host.close()


def facts_of(host: Host, wanted: Wanted | None = None) -> HostFacts:
    """The host's facts, read once for this command."""
    from kvmops.facts import read_facts

    return read_facts(host, wanted)


def plan_and_apply(args: argparse.Namespace, plan: Callable[[HostFacts], Plan], wanted: Wanted | None = None) -> int:
    """The usual changing command: connect, read the facts once, make the plan from them and
    :func:`show_and_apply` it (judged against those facts)."""
    with host_of(args) as host:
        facts = facts_of(host, wanted)
        return show_and_apply(host, plan(facts), args, facts)


def show_and_apply(host: Host, plan: Plan, args: argparse.Namespace, facts: HostFacts | None = None) -> int:
    """Print the plan; run it through the one executor (judged by its safety gate against
    ``facts``, the ones it was planned from, else facts read now): with --apply it changes the
    host (every confirmation checked first), without it the changes are only recorded."""
    from kvmops.executor import Executor, confirmed
    from kvmops.progress import printer

    print(plan.render())
    lines = Executor(host, printer("  ")).execute(plan, confirmed(getattr(args, "confirm", None)), facts=facts)
    if not host.apply:
        if not plan.empty:
            print("\n(plan only: nothing was changed; add --apply to run it)")
        return 0
    for line in lines:
        print(line)
    return 0


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
