"""``kvmops run|plan|list|journal``: runbooks executed with papermill, and their records."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from kvmops.errors import InvalidInput
from kvmops.runbook.discover import RunbookInfo, find_runbook, info_of, list_runbooks
from kvmops.runbook.execute import run_runbook
from kvmops.runbook.journal import RunRecord, find_record, journal_dir, list_records
from kvmops.runbook.secrets import SECRET_ENV_PREFIX

JOURNAL_HELP = ("journal folder (default: $KVMOPS_JOURNAL, else journal/ in a checkout, else "
                "$XDG_STATE_HOME/kvmops/journal, /var/lib/kvmops/journal as root, ~/.local/state/kvmops/journal)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, helptext in (("run", "execute a runbook (changes only with --apply)"),
                           ("plan", "execute a runbook in plan mode: show what it would do")):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("runbook", help="runbook name, e.g. lv-snapshot (see `kvmops list`)")
        p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                       help="a runbook parameter (repeatable); checked before anything runs")
        p.add_argument("--site", help="site TOML file or shipped site name (default: $KVMOPS_SITE, else demo)")
        if name == "run":
            p.add_argument("--apply", action="store_true", help="execute the changes (default: plan only)")
        p.add_argument("--confirm", metavar="TARGET", help="exact target of a destructive step, e.g. rl_build/vmtest1")
        p.add_argument("--ask", action="append", default=[], metavar="NAME",
                       help=f"prompt for a secret parameter (or set {SECRET_ENV_PREFIX}<NAME>)")
        p.add_argument("--journal", metavar="DIR", help=JOURNAL_HELP)
        p.add_argument("-q", "--quiet", action="store_true", help="no live progress")
        p.set_defaults(func=cmd_run)

    p = sub.add_parser("list", help="the runbooks with their parameters and defaults")
    p.add_argument("--names", action="store_true", help="names only")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("journal", help="past runs: `kvmops journal` lists, `kvmops journal show ID` shows one")
    p.add_argument("--journal", metavar="DIR", help=JOURNAL_HELP)
    p.add_argument("-n", type=int, default=20, help="how many of the latest runs to list")
    jsub = p.add_subparsers(dest="journal_cmd")
    show = jsub.add_parser("show", help="one run: parameters, status, commands with exit codes")
    show.add_argument("id", help="run id (a unique prefix is enough)")
    show.add_argument("--json", action="store_true", help="print record.json as it is")
    p.set_defaults(func=cmd_journal)


def _params(args: argparse.Namespace, info: RunbookInfo) -> dict[str, object]:
    given: dict[str, object] = {}
    for name, value in args.param:
        if name in given:
            raise InvalidInput(f"parameter {name} is given twice")
        given[name] = value
    for name in info.secrets:
        if name in args.ask:
            given[name] = getpass.getpass(f"{name}: ")
        elif name not in given and os.environ.get(SECRET_ENV_PREFIX + name.upper()):
            given[name] = os.environ[SECRET_ENV_PREFIX + name.upper()]
    unknown = [n for n in args.ask if n not in info.secrets]
    if unknown:
        raise InvalidInput(f"--ask {', '.join(unknown)}: not a secret parameter of {info.name} "
                           f"(secrets: {', '.join(info.secrets) or 'none'})")
    return given


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    info = info_of(find_runbook(args.runbook))
    rec = run_runbook(
        args.runbook,
        _params(args, info),
        site=args.site,
        apply=bool(getattr(args, "apply", False)),
        confirm=args.confirm,
        journal_dir=Path(args.journal) if args.journal else None,
        progress=None if args.quiet else _say,
    )
    return report(rec)


def report(rec: RunRecord) -> int:
    """The last lines of a run; 0 when it succeeded, 1 naming the failed step otherwise."""
    if rec.ok:
        print(f"\nrunbook {rec.runbook}: ok ({'applied' if rec.apply else 'plan only'}); record: {rec.record}")
        return 0
    cell = f" (cell In [{rec.failed_cell}])" if rec.failed_cell is not None else ""
    way_out = f"what to do: {rec.way_out}\n" if rec.way_out else ""
    print(f"\nkvmops: runbook {rec.runbook} FAILED at step {rec.failed_step!r}{cell}: {rec.error}\n{way_out}"
          f"executed notebook: {rec.notebook}\nrecord: {rec.record}", file=sys.stderr)
    return 1


def cmd_list(args: argparse.Namespace) -> int:
    books = list_runbooks()
    if args.names:
        print("\n".join(b.name for b in books))
        return 0
    for b in books:
        print(f"{b.name}: {b.title}")
        if b.summary:
            print(f"    {b.summary}")
        for p in b.parameters:
            if p.name in ("site", "apply", "confirm"):
                continue
            default = "(secret)" if p.secret else repr(p.default)
            print(f"    -p {p.name} {p.type_name:<5} default {default:<12} {p.help}")
        print()
    return 0


def cmd_journal(args: argparse.Namespace) -> int:
    folder = journal_dir(args.journal)
    if args.journal_cmd == "show":
        rec = find_record(folder, args.id)
        if args.json:
            print(Path(rec.record).read_text(), end="")
        else:
            print(show_record(rec))
        return 0
    damaged: list[Path] = []
    runs = list_records(folder, damaged)[-args.n:]
    if not runs:
        print(f"no runs in {folder}")
    for rec in runs:
        print(rec.summary())
    for path in damaged:
        print(f"kvmops: {path} holds no readable record (damaged, or not kvmops'): left out", file=sys.stderr)
    return 0


def show_record(rec: RunRecord) -> str:
    """A run as text: who, where, when, parameters, outcome, and every command with its exit."""
    lines = [
        f"run       {rec.id}",
        f"runbook   {rec.runbook}",
        f"status    {rec.status}" + (f" at step {rec.failed_step!r}: {rec.error}" if rec.failed_step else ""),
        *([f"way out   {rec.way_out}"] if rec.way_out else []),
        f"mode      {'apply' if rec.apply else 'plan only'}",
        f"host      {rec.host}  (site {rec.site})",
        f"user      {rec.user}",
        f"time      {rec.started} .. {rec.ended} (UTC)",
        f"notebook  {rec.notebook}",
        "parameters:",
        *(f"    {k} = {json.dumps(v)}" for k, v in rec.params.items()),
        f"commands ({len(rec.commands)}):",
    ]
    for c in rec.commands:
        code = "planned" if not c.get("executed") else f"exit {c.get('returncode')}"
        lines.append(f"    [{code:>7}] {c.get('command')}")
    return "\n".join(lines)
