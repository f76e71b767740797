"""``kvmops backup nightly``: every guest of the site into its BorgBackup repository, one at a
time, with the retention given. ``kvmops backup verify``: the lv-backup-verify runbook for every
guest with backups there, one at a time (each run a journal record, its verdict kept beside the
backup). Both print a summary and exit 1 when any guest failed (for a timer)."""

from __future__ import annotations

import argparse

from kvmops.cli.common import command, facts_of, host_of, option

REPOSITORY = option("--repository", default="", help="the repository (default: the site's [backup] repository)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("backup", help="backups into the site's BorgBackup repository")
    cmds = p.add_subparsers(dest="backup_command", required=True)
    command(cmds, "nightly", "back up every guest, one at a time, then prune each one's archives", cmd_nightly,
            REPOSITORY,
            option("--keep", default="", help="retention as borg prune keeps: last=N,daily=N,weekly=N,monthly=N "
                                             "(or N: the newest N); giving it confirms each guest's prune"),
            option("--restart", action="store_true", help="a running guest is shut down for its snapshot and "
                                                          "started again right after it (default: skipped)"),
            effect="changes")
    command(cmds, "verify", "prove every guest's newest backup: restore it under a scratch name, boot it to a "
                            "login prompt, remove it (the lv-backup-verify runbook)", cmd_verify,
            REPOSITORY,
            option("--guest", action="append", default=[], metavar="NAME",
                   help="only this guest (repeatable; default: every guest with a backup in the repository)"),
            option("--journal", metavar="DIR", help="journal folder (as for `kvmops run`)"),
            effect="changes")


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


def cmd_verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kvmops.errors import InvalidInput
    from kvmops.facts.engine import guests_in_repo
    from kvmops.procedures import backup_nightly as bn
    from kvmops.procedures import lv_backup_engine as be
    from kvmops.procedures.base import Verdict
    from kvmops.progress import printer
    from kvmops.runbook.execute import run_runbook

    with host_of(args) as host:
        repo = be.repo_for(host.site, args.repository)
        if repo is None:
            raise InvalidInput(f"site {host.site.name} names no backup repository: set [backup] repository and "
                               "passphrase_file in its site file, or give --repository")
        held = guests_in_repo(repo, host)
    unknown = sorted(set(args.guest) - set(held))
    if unknown:
        raise InvalidInput(f"no backup of {', '.join(unknown)} in {repo} (it holds: {', '.join(held) or 'none'})")
    show = printer("  ")

    def prove(guest: str) -> Verdict:
        print(f"{guest}: lv-backup-verify", flush=True)
        rec = run_runbook("lv-backup-verify", {"guest": guest, "repository": args.repository}, site=args.site,
                          apply=args.apply, journal_dir=Path(args.journal) if args.journal else None,
                          progress=show)
        why = f"record {rec.record}" if rec.ok else f"at {rec.failed_step!r}: {rec.error} (record {rec.record})"
        return Verdict.of([(rec.ok, why)])

    outcomes = bn.nightly([(g, "") for g in (args.guest or held)], prove)
    print(bn.summary(outcomes, "proven" if args.apply else "planned"))
    if not args.apply:
        print("(plan only: nothing was restored; add --apply to prove them)")
    return bn.exit_code(outcomes)
