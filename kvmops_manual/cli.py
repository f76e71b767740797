"""``kvmops docs``: build the ops manual (executed runbooks + ``mkdocs build --strict``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kvmops_manual.journal import LAB_HOST


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "docs",
        help="build the ops manual into site/ (and serve it on 127.0.0.1 with --serve)",
        description="Run every runbook in plan mode against the demo site, several at a time (or "
        "publish the latest successful lab runs with --from-journal), then `mkdocs build --strict`, "
        "then scan the built site for secrets. A runbook whose source, site and kvmops are unchanged "
        "since the last build is not run again. A failing runbook fails the build.",
    )
    p.add_argument("--from-journal", action="store_true",
                   help=f"publish each runbook's latest successful applied run against the lab "
                        f"host ({LAB_HOST}) from the journal, where there is one")
    p.add_argument("--lab-host", default=LAB_HOST, metavar="NAME",
                   help=f"host name of the lab's site file (default: {LAB_HOST})")
    p.add_argument("--journal", metavar="DIR", type=Path,
                   help="journal folder (default: $KVMOPS_JOURNAL or journal/)")
    p.add_argument("--site-dir", metavar="DIR", type=Path, help="where to build (default: site/)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="runbooks run at a time (default: two per core, at most 8)")
    p.add_argument("--no-cache", dest="cache", action="store_false",
                   help="run every runbook again (default: a runbook whose source, site and kvmops "
                        "are unchanged since the last build is not run again; .cache/kvmops-runbooks)")
    p.add_argument("--serve", action="store_true", help="after building, serve the site on 127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="port for --serve (default: 8000)")
    p.set_defaults(func=cmd_docs)


def cmd_docs(args: argparse.Namespace) -> int:
    from kvmops_manual.build import build, serve

    result = build(site_dir=args.site_dir, from_journal=args.from_journal, journal=args.journal,
                   lab_host=args.lab_host, progress=_say, jobs=args.jobs, cache=args.cache)
    if args.serve:
        serve(result.site_dir, args.port, progress=_say)
    return 0


def _say(line: str) -> None:
    print(line, flush=True)
