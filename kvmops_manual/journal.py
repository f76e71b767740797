"""The run journal as the manual shows it, and the lab runs ``--from-journal`` publishes."""

from __future__ import annotations

from pathlib import Path

from kvmops.runbook.journal import RunRecord, list_records
from kvmops_manual.pages import table

LAB_HOST = "kvmlab"  # the host name in the lab's site file (kvmops_lab.labsite)


def host_name(rec: RunRecord) -> str:
    """The site's host name of a run (the record says ``kvmlab (root@127.0.0.1)`` over SSH)."""
    return rec.host.split(" ", 1)[0]


def newest_first(journal: Path) -> list[RunRecord]:
    return sorted(list_records(journal), key=lambda r: (r.started, r.id), reverse=True)


def latest_lab_runs(journal: Path, lab_host: str = LAB_HOST) -> dict[str, RunRecord]:
    """Per runbook, its newest applied, successful run against the lab host."""
    out: dict[str, RunRecord] = {}
    for rec in newest_first(journal):
        if rec.ok and rec.apply and host_name(rec) == lab_host and Path(rec.notebook).is_file():
            out.setdefault(rec.runbook, rec)
    return out


def journal_table(records: list[RunRecord]) -> str:
    """Newest first: a table of the runs, then each run's parameters (masked as stored)."""
    if not records:
        return ("!!! note \"The journal is empty\"\n"
                "    No `journal/*/record.json` was found when the manual was built. "
                "Runs appear here after `kvmops run`.")
    rows = [
        (_when(r.started), f"`{r.runbook}`", "apply" if r.apply else "plan", _outcome(r), r.host, f"`{r.id}`")
        for r in records
    ]
    details = [_details(r) for r in records]
    return table(("Started (UTC)", "Runbook", "Mode", "Outcome", "Host", "Run"), rows) + \
        "\n\n## Runs in detail\n\n" + "\n\n".join(details) + "\n"


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
