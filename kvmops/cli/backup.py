"""``kvmops backup nightly``: every guest of the site into its BorgBackup repository, one at a
time, with the retention given; a summary, and exit 1 when any guest failed (for a timer)."""

from __future__ import annotations

import argparse

from kvmops.cli.common import add_apply, facts_of, host_of


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("backup", help="backups into the site's BorgBackup repository")
    cmds = p.add_subparsers(dest="backup_command", required=True)
    n = cmds.add_parser("nightly", help="back up every guest, one at a time, then prune each one's archives")
    add_apply(n)
    n.add_argument("--repository", default="", help="the repository (default: the site's [backup] repository)")
    n.add_argument("--keep", default="", help="retention as borg prune keeps: last=N,daily=N,weekly=N,monthly=N "
                                             "(or N: the newest N); giving it confirms each guest's prune")
    n.add_argument("--restart", action="store_true", help="a running guest is shut down for its snapshot and "
                                                          "started again right after it (default: skipped)")
    n.set_defaults(func=cmd_nightly)


def cmd_nightly(args: argparse.Namespace) -> int:
    from kvmops.errors import InvalidInput
    from kvmops.procedures import backup_nightly as bn
    from kvmops.procedures import lv_backup_engine as be
    from kvmops.progress import printer
    from kvmops.transfer.engine import parse_keep

    keep = parse_keep(args.keep)
    with host_of(args) as host:
        repo = be.repo_for(host.site, args.repository)
        if repo is None:
            raise InvalidInput(f"site {host.site.name} names no backup repository: set [backup] repository and "
                               "passphrase_file in its site file, or give --repository")
        facts = facts_of(host)
        guests = [(g, why or ("runs (give --restart to shut it down for its snapshot)"
                              if not args.restart and (d := facts.domain(g)) is not None and d.active else ""))
                  for g, why in bn.guests_of(facts)]
        outcomes = bn.nightly(guests, bn.back_up_one(host, repo, keep, args.restart, printer("  ")))
    print(bn.summary(outcomes))
    if not args.apply:
        print("(plan only: nothing was changed; add --apply to run it)")
    return bn.exit_code(outcomes)
