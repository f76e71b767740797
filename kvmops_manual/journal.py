"""The run journal as the manual shows it, and the lab runs ``--from-journal`` publishes."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from pathlib import Path

from kvmops.runbook.journal import RunRecord, list_records

LAB_HOST = "kvmlab"  # the host name in the lab's site file (kvmops_lab.labsite)


def host_name(rec: RunRecord) -> str:
    """The site's host name of a run (the record says ``kvmlab (root@127.0.0.1)`` over SSH)."""
    return rec.host.split(" ", 1)[0]


def readable_records(journal: Path) -> list[RunRecord]:
    """Every run of the journal whose ``record.json`` holds a record, oldest first (a damaged
    one is left out, never a failure of the build: :func:`kvmops.runbook.journal.list_records`)."""
    return list_records(journal)


def newest_first(journal: Path) -> list[RunRecord]:
    """The journal's readable runs, newest first (a damaged record is left out)."""
    return sorted(readable_records(journal), key=lambda r: (r.started, r.id), reverse=True)


def latest_lab_runs(journal: Path, lab_host: str = LAB_HOST) -> dict[str, RunRecord]:
    """Per runbook, its newest applied, successful run against the lab host."""
    out: dict[str, RunRecord] = {}
    for rec in newest_first(journal):
        if rec.ok and rec.apply and host_name(rec) == lab_host and Path(rec.notebook).is_file():
            out.setdefault(rec.runbook, rec)
    return out


def journal_table(records: list[RunRecord], guests: Callable[[RunRecord], list[str]] | None = None,
                  links: Mapping[tuple[str, str], str] | None = None) -> str:
    """Newest first: a table of the runs with a filter box (by guest), then each run's
    parameters (masked as stored). ``guests`` says which guests a run touched, ``links``
    where the page of (host, guest) is, relative to the journal page."""
    if not records:
        return ("!!! note \"The journal is empty\"\n"
                "    No `journal/*/record.json` was found when the manual was built. "
                "Runs appear here after `kvmops run`.")
    rows = [_row(r, (guests or _named_guests)(r), links or {}) for r in records]
    details = [_details(r) for r in records]
    return FILTER_BOX + "\n" + TABLE_HEAD + "".join(rows) + "</tbody>\n</table>\n" + \
        "\n## Runs in detail\n\n" + "\n\n".join(details) + "\n"


FILTER_BOX = ('<p><input type="search" id="kvmops-journal-filter" placeholder="Filter by guest, e.g. test1" '
              'aria-label="Filter the runs by guest" autocomplete="off" style="padding: .3em .6em; min-width: 18em; '
              'border: 1px solid var(--md-default-fg-color--lighter); border-radius: .2em"> '
              '<span id="kvmops-journal-count"></span></p>')
TABLE_HEAD = ('<table id="kvmops-journal-table">\n<thead><tr><th>Started (UTC)</th><th>Runbook</th><th>Guests</th>'
              "<th>Mode</th><th>Outcome</th><th>Host</th><th>Run</th></tr></thead>\n<tbody>\n")


def _named_guests(rec: RunRecord) -> list[str]:
    one = [str(rec.params["guest"])] if rec.params.get("guest") else []
    return one + [g.strip() for g in str(rec.params.get("guests", "")).split(",") if g.strip()]


def _row(r: RunRecord, guests: list[str], links: Mapping[tuple[str, str], str]) -> str:
    def guest(name: str) -> str:
        link = links.get((host_name(r), name))
        text = html.escape(name)
        return f'<a href="{html.escape(link)}">{text}</a>' if link else text

    outcome = "ok" if r.ok else f"<strong>{html.escape(r.status)}</strong>" + (
        f" at {html.escape(r.failed_step)}" if r.failed_step else "")
    cells = (html.escape(_when(r.started)), f"<code>{html.escape(r.runbook)}</code>", ", ".join(map(guest, guests)),
             "apply" if r.apply else "plan", outcome, html.escape(r.host), f"<code>{html.escape(r.id)}</code>")
    return (f'<tr data-guests="{html.escape(" ".join(guests))}">' + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>\n")


def _when(iso: str) -> str:
    """``2025-01-02T10:00:00+00:00`` -> ``2025-01-02 10:00``."""
    return iso[:16].replace("T", " ")


def _outcome(r: RunRecord) -> str:
    if r.ok:
        return "ok"
    where = f" at {r.failed_step}" if r.failed_step else ""
    return f"**{r.status}**{where}"


def _details(r: RunRecord) -> str:
    kind = "success" if r.ok else "failure"
    lines = [f'??? {kind} "{r.id}: {r.runbook}, {"apply" if r.apply else "plan"}, {r.status}"',
             f"    - by `{r.user}` on {r.host}, {r.started} to {r.ended or '?'}"]
    if r.error:
        first = (r.error.splitlines() or [""])[0].replace("`", "'")
        lines.append(f"    - error: `{first}`")
    for key, value in sorted(r.params.items()):
        shown = Path(str(value)).name if key == "site" and value else value
        lines.append(f"    - `{key}` = `{shown!r}`" if shown != "" else f"    - `{key}` (empty)")
    return "\n".join(lines)
